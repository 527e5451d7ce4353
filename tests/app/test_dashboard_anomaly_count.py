"""The dashboard counts every anomaly: the sum over the boolean column is an integer."""

from __future__ import annotations

import shutil
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import create_engine

from app.records import NewAnalysis, NewDrawing, analysis_stats, record_analysis
from app.settings import AppSettings


def _record(database: Path, total: int, anomalies: int) -> None:
    engine = create_engine(f"sqlite:///{database}")
    for index in range(total):
        drawing = NewDrawing(
            filename=f"d{index}.png",
            content_type="image/png",
            size_bytes=100,
            sha256=f"{index:064x}",
            age_years=8,
            subject=None,
            storage_key=f"drawings/{index}.png",
        )
        analysis = NewAnalysis(
            model_version="test",
            age_group="8-10",
            anomaly_score=5.0 if index < anomalies else 0.5,
            threshold=2.0,
            is_anomaly=index < anomalies,
            normalised_score=50.0,
            processing_time_ms=10.0,
        )
        record_analysis(engine, drawing, analysis)
    engine.dispose()


def test_thirteen_anomalies_among_twenty_one_are_counted_as_thirteen(
    migrated_database: Path, tmp_path: Path
) -> None:
    database = tmp_path / "app.db"
    shutil.copyfile(migrated_database, database)
    _record(database, total=21, anomalies=13)

    stats = analysis_stats(create_engine(f"sqlite:///{database}"), "1970-01-01")

    assert (stats.total, stats.anomalies) == (21, 13)
    assert stats.anomaly_rate is not None and round(stats.anomaly_rate, 3) == 0.619


def test_the_dashboard_shows_every_anomaly_and_its_rate(
    make_client, app_settings: AppSettings, migrated_database: Path
) -> None:  # type: ignore[no-untyped-def]
    app_settings.database_path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(migrated_database, app_settings.database_path)
    _record(app_settings.database_path, total=21, anomalies=13)
    admin: TestClient = make_client(app_settings)
    from tests.app.helpers import login

    login(admin)
    page = admin.get("/dashboard").text

    assert '<span class="stat-value" id="stat-anomalies">13</span>' in page
    assert "rate 61.9" in page

"""Each verdict is explained: the features contributing most, in plain words, stored with the
analysis and shown by the API and the dashboard."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import create_engine

from app.records import analysis_by_id
from tests.app.helpers import image_bytes

INK_WORDS = ("much less ink than drawings at this age", "almost nothing is drawn on the page")


def test_a_blank_page_is_flagged_for_having_almost_no_ink(admin_client: TestClient) -> None:
    files = {"file": ("blank.png", image_bytes(400, 400, colour="white"), "image/png")}
    response = admin_client.post("/api/v1/drawings", files=files, data={"age": "8"})
    assert response.status_code == 201, response.text
    analysis = response.json()

    assert analysis["is_anomaly"] is True
    assert 1 <= len(analysis["reasons"]) <= 3
    texts = [reason["text"] for reason in analysis["reasons"]]
    assert any(text in INK_WORDS for text in texts), texts
    first = analysis["reasons"][0]
    assert first["direction"] in ("higher", "lower") and 0 < first["share"] <= 1
    stored = admin_client.get(f"/api/v1/analyses/{analysis['public_id']}").json()
    assert stored["reasons"] == analysis["reasons"]

    page = admin_client.get("/dashboard").text
    assert any(text in page for text in INK_WORDS)


def test_analyses_recorded_before_reasons_were_stored_have_none(
    migrated_database: Path, tmp_path: Path
) -> None:
    database = tmp_path / "app.db"
    shutil.copyfile(migrated_database, database)
    with sqlite3.connect(database) as conn:
        columns = [row[1] for row in conn.execute("PRAGMA table_info(analyses)")]
        assert "reasons" in columns  # added by 0003_verdict_reasons
        conn.execute(
            "INSERT INTO drawings (filename, content_type, size_bytes, sha256, age_years, "
            "storage_key, created_at) VALUES ('d.png', 'image/png', 1, 'x', 8, 'k', 't')"
        )
        conn.execute(
            "INSERT INTO analyses (drawing_id, created_at, model_version, age_group, "
            "anomaly_score, threshold, is_anomaly, normalised_score, processing_time_ms, "
            "public_id) VALUES (1, 't', 'old', '8-10', 1.0, 2.0, 0, 50.0, 10.0, 'handle')"
        )
    record = analysis_by_id(create_engine(f"sqlite:///{database}"), 1)
    assert record is not None and record["reasons"] == []

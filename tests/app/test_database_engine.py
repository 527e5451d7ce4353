"""The app's engine: the shared helper's pragmas, real transactions, many threads at once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import text

from app.database import make_engine
from app.migrate import migrate
from app.records import NewAnalysis, NewDrawing, analysis_by_id, record_analysis
from app.settings import AppSettings
from opsd.settings import load_settings


def migrated(tmp_path: Path) -> AppSettings:
    settings = load_settings(AppSettings, database_path=tmp_path / "app.db")
    migrate(settings, backup_command=None)
    return settings


def new_rows(number: int) -> tuple[NewDrawing, NewAnalysis]:
    drawing = NewDrawing(
        filename=f"{number}.png",
        content_type="image/png",
        size_bytes=100,
        sha256=f"{number:064x}",
        age_years=6,
        subject=None,
        storage_key=f"drawings/{number}.png",
    )
    analysis = NewAnalysis("v", "5-7", 1.0, 2.0, False, 50.0, 12.5)
    return drawing, analysis


def test_connections_use_rollback_journal_mode_and_a_busy_timeout(tmp_path: Path) -> None:
    settings = migrated(tmp_path)
    engine = make_engine(settings.database_path, busy_timeout_ms=1234)
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar_one() == "delete"
        assert conn.execute(text("PRAGMA busy_timeout")).scalar_one() == 1234
        assert conn.execute(text("PRAGMA foreign_keys")).scalar_one() == 1
    engine.dispose()


def test_a_failed_transaction_is_rolled_back(tmp_path: Path) -> None:
    settings = migrated(tmp_path)
    engine = make_engine(settings.database_path, 5000)
    with pytest.raises(RuntimeError, match="abandon"), engine.begin() as conn:
        conn.execute(text("INSERT INTO app_config VALUES ('k', '1', 'now')"))
        raise RuntimeError("abandon")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM app_config")).scalar_one() == 0
    engine.dispose()


def test_many_threads_write_and_read_at_once_without_losing_a_row(tmp_path: Path) -> None:
    """With more threads than pooled connections (the upload path's worker threads)."""
    settings = migrated(tmp_path)
    engine = make_engine(settings.database_path, 30_000)

    def write_then_read(number: int) -> bool:
        analysis_id = record_analysis(engine, *new_rows(number))
        record = analysis_by_id(engine, analysis_id)
        return record is not None and record["id"] == analysis_id

    with ThreadPoolExecutor(max_workers=24) as pool:
        assert all(pool.map(write_then_read, range(240)))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM analyses")).scalar_one() == 240
    engine.dispose()

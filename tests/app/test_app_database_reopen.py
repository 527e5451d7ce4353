import os
import sqlite3
from pathlib import Path

from sqlalchemy import text

from app.database import make_engine


def make_db(path: Path, rows: int) -> Path:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE analyses (id INTEGER PRIMARY KEY)")
    conn.executemany("INSERT INTO analyses VALUES (?)", [(i,) for i in range(rows)])
    conn.commit()
    conn.close()
    return path


def count(engine) -> int:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM analyses")).scalar_one())


def test_pooled_connections_follow_a_database_renamed_into_place(tmp_path: Path) -> None:
    live = make_db(tmp_path / "app.db", rows=3)
    engine = make_engine(live, busy_timeout_ms=1000)
    assert count(engine) == 3  # the pool now holds a connection to the old file
    restored = make_db(tmp_path / "app.db.restore-tmp", rows=7)
    os.replace(restored, live)
    assert count(engine) == 7


def test_an_unchanged_file_keeps_its_pooled_connection(tmp_path: Path) -> None:
    engine = make_engine(make_db(tmp_path / "app.db", rows=1), busy_timeout_ms=1000)
    with engine.connect() as conn:
        first = conn.connection.dbapi_connection
    with engine.connect() as conn:
        assert conn.connection.dbapi_connection is first

import sqlite3
from pathlib import Path

import pytest

from opsd.database import (
    DatabaseError,
    alembic_revision,
    connect,
    integrity_errors,
    table_row_counts,
)
from tests.conftest import app_schema_head


def test_read_write_connection_uses_rollback_journal(tmp_path: Path) -> None:
    conn = connect(tmp_path / "new" / "app.db", busy_timeout_ms=1234)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 1234


def test_wal_database_is_switched_back_to_delete(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    raw = sqlite3.connect(path)
    raw.execute("PRAGMA journal_mode = WAL")
    raw.execute("CREATE TABLE t (x)")
    raw.close()
    assert connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "delete"


def test_read_only_connection_cannot_write(app_db: Path) -> None:
    conn = connect(app_db, readonly=True)
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        conn.execute("DELETE FROM analyses")


def test_read_only_never_creates_a_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "absent.db"
    with pytest.raises(DatabaseError, match="absent.db: database file not found"):
        connect(missing, readonly=True)
    assert not missing.exists()


def test_a_file_that_is_not_sqlite_is_named(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("hello, this is not a database at all")
    with pytest.raises(DatabaseError, match=r"notes.db: not an SQLite database \(bad header\)"):
        connect(path, readonly=True)


def test_integrity_counts_and_revision_of_a_sound_database(app_db: Path) -> None:
    conn = connect(app_db, readonly=True)
    assert integrity_errors(conn) == []
    assert table_row_counts(conn) == {
        "admin_sessions": 0,
        "alembic_version": 1,
        "analyses": 200,
        "app_config": 0,
        "drawings": 200,
    }
    assert alembic_revision(conn) == app_schema_head()


def test_integrity_check_reports_corruption(app_db: Path) -> None:
    data = bytearray(app_db.read_bytes())
    page = 4096
    for offset in range(2 * page, len(data) - page, page):
        data[offset + 100 : offset + 400] = b"\xff" * 300
    app_db.write_bytes(bytes(data))
    assert integrity_errors(connect(app_db, readonly=True))

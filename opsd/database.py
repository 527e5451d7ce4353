"""The one SQLite connection helper every process uses (ARCHITECTURE §2).

The database lives on EFS, where WAL does not work across hosts, so every read-write
connection runs in rollback-journal mode (journal_mode=DELETE) with a busy timeout.
Tasks open the app database read-only.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from urllib.parse import quote

SQLITE_HEADER = b"SQLite format 3\x00"
DEFAULT_BUSY_TIMEOUT_MS = 30_000


class DatabaseError(Exception):
    """The database cannot be used; the message says which file and why."""


def connect(
    path: str | Path,
    *,
    readonly: bool = False,
    busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
    create: bool = True,
    check_same_thread: bool = True,
) -> sqlite3.Connection:
    """Open `path` with the project's pragmas; read-only opening never creates or writes."""
    path = Path(path)
    if readonly or not create:
        ensure_sqlite_file(path)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
    mode = "ro" if readonly else ("rw" if not create else "rwc")
    uri = f"file:{quote(str(path.resolve()))}?mode={mode}"
    try:
        conn = sqlite3.connect(
            uri,
            uri=True,
            timeout=busy_timeout_ms / 1000,
            check_same_thread=check_same_thread,
            isolation_level=None,
        )
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        if not readonly:
            mode_now = conn.execute("PRAGMA journal_mode = DELETE").fetchone()[0]
            if str(mode_now).lower() != "delete":
                raise DatabaseError(f"{path}: cannot switch to journal_mode=DELETE ({mode_now})")
            conn.execute("PRAGMA foreign_keys = ON")
    except sqlite3.DatabaseError as exc:
        raise DatabaseError(f"{path}: {exc}") from None
    return conn


def ensure_sqlite_file(path: Path) -> None:
    """Fail with a clear reason when `path` is missing or is not an SQLite database."""
    if not path.exists():
        raise DatabaseError(f"{path}: database file not found")
    if not path.is_file():
        raise DatabaseError(f"{path}: not a regular file")
    with path.open("rb") as handle:
        header = handle.read(len(SQLITE_HEADER))
    if path.stat().st_size and header != SQLITE_HEADER:
        raise DatabaseError(f"{path}: not an SQLite database (bad header)")


def in_rollback_journal_mode(header: bytes) -> bool:
    """Bytes 18 and 19 of a database header: 1 for the rollback journal, 2 for WAL."""
    return header[18:20] == b"\x01\x01"


def integrity_errors(
    conn: sqlite3.Connection, limit: int = 5, pragma: str = "integrity_check"
) -> list[str]:
    """Problems `PRAGMA integrity_check` (or `quick_check`) reports; empty when sound."""
    if pragma not in ("integrity_check", "quick_check"):
        raise ValueError(f"not an integrity pragma: {pragma!r}")
    try:
        rows = conn.execute(f"PRAGMA {pragma}({int(limit)})").fetchall()
    except sqlite3.DatabaseError as exc:
        return [str(exc)]
    messages = [str(row[0]) for row in rows]
    return [] if messages == ["ok"] else messages


def table_root_pages(conn: sqlite3.Connection) -> dict[str, int]:
    """The root page of each table, by name (0 for a virtual table)."""
    return {
        name: root
        for name, root in conn.execute(
            "SELECT name, rootpage FROM sqlite_master "
            "WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
        )
    }


def table_row_counts(conn: sqlite3.Connection, scan: bool = False) -> dict[str, int]:
    """Rows of each table; `scan`: counted by a scan of the table's own b-tree (NOT INDEXED),
    not through its smallest index, which is what SQLite picks otherwise."""
    hint = " NOT INDEXED" if scan else ""
    return {
        name: conn.execute(f'SELECT count(*) FROM "{name}"{hint}').fetchone()[0]
        for name in table_root_pages(conn)
    }


def alembic_revision(conn: sqlite3.Connection) -> str | None:
    try:
        row = conn.execute("SELECT version_num FROM alembic_version LIMIT 1").fetchone()
    except sqlite3.OperationalError:
        return None
    return str(row[0]) if row else None

"""The app database as the tasks see it: the SQLite file, or PostgreSQL when DATABASE_URL names
a server (several app tasks behind the load balancer; docs/CAPACITY.md).

`publish-metrics` reads either, read-only, with the same SQL (psycopg alone, the `postgres`
extra: the tasks image has no SQLAlchemy). `backup`, `restore` and `verify-backup` work on the
SQLite file only (`sqlite_only`).
"""

from __future__ import annotations

import re
import sqlite3
from typing import Any, Protocol

from opsd.database import DatabaseError, connect
from opsd.settings import Settings

try:
    import psycopg
except ImportError:  # the core install: SQLite only
    psycopg = None

READ_ERRORS: tuple[type[Exception], ...] = (sqlite3.DatabaseError,) + (
    (psycopg.Error,) if psycopg is not None else ()
)


class ReadCursor(Protocol):
    def fetchone(self) -> Any: ...

    def __iter__(self) -> Any: ...


class ReadConnection(Protocol):
    """What the readers use of a connection: sqlite3's `execute` with `:name` or `?`
    parameters."""

    def execute(self, sql: str, parameters: Any = ..., /) -> ReadCursor: ...

    def close(self) -> None: ...


_NAMED = re.compile(r"(?<!:):([A-Za-z_]\w*)")


class PostgresReader:
    """A read-only psycopg connection that takes the readers' sqlite3-style SQL."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def execute(self, sql: str, parameters: Any = None, /) -> Any:
        query = _NAMED.sub(r"%(\1)s", sql.replace("%", "%%")).replace("?", "%s")
        return self.conn.execute(query, parameters)

    def close(self) -> None:
        self.conn.close()


def open_app_database(settings: Settings, busy_timeout_ms: int = 10_000) -> ReadConnection:
    """The app database, read-only; DatabaseError saying which one and why."""
    if settings.database_is_sqlite:
        return connect(settings.database_path, readonly=True, busy_timeout_ms=busy_timeout_ms)
    if psycopg is None:
        raise DatabaseError(
            f"{settings.database_name}: psycopg is not installed (the postgres extra)"
        )
    try:
        conn = psycopg.connect(
            settings.libpq_url,
            autocommit=True,
            connect_timeout=10,
            options="-c default_transaction_read_only=on "
            f"-c statement_timeout={int(busy_timeout_ms)}",
        )
    except psycopg.Error as exc:
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise DatabaseError(f"{settings.database_name}: {reason}") from None
    return PostgresReader(conn)


def database_size_bytes(settings: Settings, conn: ReadConnection) -> int:
    """The SQLite file's size, or pg_database_size of the PostgreSQL database."""
    if settings.database_is_sqlite:
        return settings.database_path.stat().st_size
    return int(conn.execute("SELECT pg_database_size(current_database())").fetchone()[0])

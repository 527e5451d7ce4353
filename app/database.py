"""The app database: one SQLAlchemy engine, over the shared SQLite helper
(ARCHITECTURE §2) or, when DATABASE_URL names one, a PostgreSQL server."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.pool import QueuePool

from opsd.database import connect
from opsd.settings import Settings


def engine_for(settings: Settings) -> Engine:
    """The engine DATABASE_URL (or DATABASE_PATH) selects."""
    if settings.database_is_sqlite:
        return make_engine(settings.database_path, settings.sqlite_busy_timeout_ms)
    # Several app tasks share the server: a connection the server (or a failover) closed is
    # noticed before it is used.
    return create_engine(settings.sqlalchemy_url, pool_size=5, max_overflow=10, pool_pre_ping=True)


def make_engine(path: Path, busy_timeout_ms: int) -> Engine:
    """An engine whose connections come from `opsd.database.connect` (journal_mode=DELETE,
    busy_timeout, foreign keys) and whose transactions are real SQLite transactions."""

    def creator() -> Any:
        return connect(path, busy_timeout_ms=busy_timeout_ms, check_same_thread=False)

    # "sqlite://" alone would mean an in-memory database and a SingletonThreadPool, which
    # closes connections other threads still use once it has more than five: a crash.
    engine = create_engine(
        f"sqlite:///{path}", creator=creator, poolclass=QueuePool, pool_size=5, max_overflow=10
    )

    # The helper opens connections in autocommit mode (isolation_level=None), so the
    # transaction SQLAlchemy believes in must be begun explicitly.
    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN")

    # An in-place restore renames a new file over the database: pooled connections would go
    # on using the old one, so a connection whose file is no longer at `path` is reopened.
    @event.listens_for(engine, "connect")
    def _remember_file(dbapi_conn: Any, record: Any) -> None:
        record.info["file_id"] = file_identity(path)

    @event.listens_for(engine, "checkout")
    def _reopen_if_replaced(dbapi_conn: Any, record: Any, proxy: Any) -> None:
        if record.info.get("file_id") != file_identity(path):
            raise DisconnectionError(f"{path} was replaced; reopening")

    return engine


def file_identity(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_dev, stat.st_ino


def database_reachable(engine: Engine) -> str | None:
    """None when a query answers; otherwise the reason, in one line."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT count(*) FROM analyses")).scalar_one()
    except Exception as exc:
        return str(exc).splitlines()[0]
    return None


def utc_now() -> str:
    """Timestamps are ISO 8601 UTC strings with seconds, the shape the tasks read."""
    return datetime.now(UTC).isoformat(timespec="seconds")

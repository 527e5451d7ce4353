"""The app database: one SQLAlchemy engine over the shared SQLite helper (DESIGN §2)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.pool import QueuePool

from opsd.database import connect


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

    return engine


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

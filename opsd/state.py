"""The operations state database (OPS_STATE_PATH): task runs and what tasks remember.

Never the app database: tasks only read that one (ARCHITECTURE §2).
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from opsd.clock import utcnow
from opsd.database import SQLITE_HEADER, DatabaseError, connect
from opsd.results import TaskResult
from opsd.settings import ConfigError


class StateError(ConfigError):
    """OPS_STATE_PATH cannot be opened as the ops state database; the message says why."""


class OpsState:
    def __init__(self, path: str | Path, busy_timeout_ms: int = 30_000) -> None:
        self.path = Path(path)
        # Set when the file was not a database and was moved aside: the tasks say so.
        self.set_aside: Path | None = None
        try:
            self._open(busy_timeout_ms)
        except (DatabaseError, sqlite3.Error, OSError) as exc:
            if not _not_a_database(self.path):
                raise StateError(_state_problem(self.path, exc)) from None
            self.set_aside = self.path.with_name(
                f"{self.path.name}.unreadable-{utcnow():%Y%m%dT%H%M%S}"
            )
            self.path.rename(self.set_aside)
            print(
                f"warning: OPS_STATE_PATH {self.path}: not an SQLite database: kept as "
                f"{self.set_aside.name}, a new one started",
                file=sys.stderr,
            )
            self._open(busy_timeout_ms)

    def _open(self, busy_timeout_ms: int) -> None:
        self.conn = connect(self.path, busy_timeout_ms=busy_timeout_ms, check_same_thread=False)
        try:
            self._ensure_schema()
        except sqlite3.Error:
            self.conn.close()
            raise

    def _ensure_schema(self) -> None:
        self.conn.executescript(
            """
            CREATE TABLE IF NOT EXISTS task_runs (
                run_id TEXT PRIMARY KEY,
                task TEXT NOT NULL,
                started_at TEXT NOT NULL,
                finished_at TEXT NOT NULL,
                status TEXT NOT NULL,
                duration_s REAL NOT NULL,
                message TEXT NOT NULL,
                details TEXT NOT NULL
            );
            CREATE INDEX IF NOT EXISTS task_runs_by_task ON task_runs (task, finished_at);
            CREATE TABLE IF NOT EXISTS kv (
                key TEXT PRIMARY KEY,
                value TEXT NOT NULL,
                updated_at TEXT NOT NULL
            );
            """
        )

    def close(self) -> None:
        self.conn.close()

    def record_run(self, run_id: str, started_at: datetime, result: TaskResult) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO task_runs (run_id, task, started_at, finished_at, status, "
            "duration_s, message, details) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                run_id,
                result.task,
                started_at.isoformat(),
                utcnow().isoformat(),
                str(result.status),
                round(result.duration_s, 3),
                result.message,
                json.dumps(result.details, default=str),
            ),
        )

    def last_runs(self) -> dict[str, dict[str, Any]]:
        """The newest run of each task, by task name."""
        rows = self.conn.execute(
            "SELECT task, run_id, started_at, finished_at, status, duration_s, message "
            "FROM task_runs t WHERE finished_at = "
            "(SELECT max(finished_at) FROM task_runs WHERE task = t.task)"
        ).fetchall()
        keys = ("task", "run_id", "started_at", "finished_at", "status", "duration_s", "message")
        return {row[0]: dict(zip(keys, row, strict=True)) for row in rows}

    def get(self, key: str, default: Any = None) -> Any:
        row = self.conn.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    def set(self, key: str, value: Any) -> None:
        self.conn.execute(
            "INSERT INTO kv (key, value, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value, "
            "updated_at = excluded.updated_at",
            (key, json.dumps(value, default=str), utcnow().isoformat()),
        )


def _state_problem(path: Path, exc: Exception) -> str:
    if isinstance(exc, OSError):
        reason = f"{exc.strerror or exc}" + (f" ({exc.filename})" if exc.filename else "")
    else:
        reason = str(exc).removeprefix(f"{path}: ")
    return f"OPS_STATE_PATH {path}: cannot open the ops state database: {reason}"


def _not_a_database(path: Path) -> bool:
    """The file is there but is no SQLite database (garbage, or a damaged header)."""
    try:
        with path.open("rb") as handle:
            header = handle.read(len(SQLITE_HEADER))
    except OSError:
        return False
    return bool(header) and header != SQLITE_HEADER


def process_alive(info: dict[str, Any] | None) -> bool:
    """Whether the process a state entry names (`pid` on `host`) still runs on this host."""
    if not info or info.get("host") != socket.gethostname():
        return False
    try:
        os.kill(int(info["pid"]), 0)
    except (OSError, ValueError, KeyError):
        return False
    return True

"""The lease that keeps two publish-metrics runs from publishing the same minutes.

A run takes the lease in the ops state (`task_leases`) inside one write transaction, and a
heartbeat thread keeps pushing its expiry `LEASE_TTL` ahead while the run lives. So a run that
is killed stops renewing and its lease lapses within `LEASE_TTL`; on the same host a lease whose
process is gone is taken over at once. A run that takes over a lease that was never released
learns who held it, so it can record the dead run as failed.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from opsd.database import connect
from opsd.metrics import Datum, MetricsError
from opsd.results import Status, TaskResult
from opsd.runner import TaskContext
from opsd.state import process_alive

LEASE_TTL = timedelta(minutes=2)
HEARTBEAT_EVERY_S = LEASE_TTL.total_seconds() / 4


@dataclass(frozen=True)
class LeaseHolder:
    run_id: str
    expires_at: str
    holder: dict[str, Any]

    @property
    def started_at(self) -> str | None:
        value = self.holder.get("started_at")
        return str(value) if value else None

    def describe(self) -> str:
        where = self.holder.get("host", "?")
        pid = self.holder.get("pid", "?")
        return f"run {self.run_id} (pid {pid} on {where}, started {self.started_at or '?'})"


@dataclass(frozen=True)
class LeaseOutcome:
    taken: bool
    holder: LeaseHolder | None  # taken: the run whose lease was left behind; else the holder


def ensure_lease_table(conn: sqlite3.Connection) -> None:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS task_leases ("
        "task TEXT PRIMARY KEY, run_id TEXT NOT NULL, expires_at TEXT NOT NULL)"
    )
    columns = {row[1] for row in conn.execute("PRAGMA table_info(task_leases)")}
    if "holder" not in columns:
        conn.execute("ALTER TABLE task_leases ADD COLUMN holder TEXT")


def this_process(started_at: datetime) -> dict[str, Any]:
    return {"host": socket.gethostname(), "pid": os.getpid(), "started_at": started_at.isoformat()}


def _holder_is_gone(holder: dict[str, Any]) -> bool:
    """Known dead: it ran on this host and its process no longer exists."""
    return holder.get("host") == socket.gethostname() and not process_alive(holder)


def take_lease(
    conn: sqlite3.Connection,
    task: str,
    run_id: str,
    now: datetime,
    holder: dict[str, Any] | None = None,
) -> LeaseOutcome:
    """Take the task's lease unless a live run holds it; atomic across processes."""
    ensure_lease_table(conn)
    holder = holder or this_process(now)
    conn.execute("BEGIN IMMEDIATE")
    try:
        row = conn.execute(
            "SELECT run_id, expires_at, holder FROM task_leases WHERE task = ?", (task,)
        ).fetchone()
        previous = None
        if row is not None:
            previous = LeaseHolder(row[0], row[1], _load(row[2]))
            if row[1] >= now.isoformat() and not _holder_is_gone(previous.holder):
                conn.execute("ROLLBACK")
                return LeaseOutcome(False, previous)
        conn.execute(
            "INSERT INTO task_leases (task, run_id, expires_at, holder) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (task) DO UPDATE SET run_id = excluded.run_id, "
            "expires_at = excluded.expires_at, holder = excluded.holder",
            (task, run_id, (now + LEASE_TTL).isoformat(), json.dumps(holder)),
        )
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return LeaseOutcome(True, previous)


def release_lease(conn: sqlite3.Connection, task: str, run_id: str) -> None:
    conn.execute("DELETE FROM task_leases WHERE task = ? AND run_id = ?", (task, run_id))


def _load(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text) if text else {}
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def record_dead_run(ctx: TaskContext, holder: LeaseHolder, now: datetime) -> str:
    """A run that left its lease behind died: give it the run record and TaskFailed it lacks."""
    message = (
        f"died without finishing (killed, out of memory or host lost); its lease was left "
        f"to {holder.expires_at} and taken over by run {ctx.run_id}"
    )
    known = ctx.state.conn.execute(
        "SELECT 1 FROM task_runs WHERE run_id = ?", (holder.run_id,)
    ).fetchone()
    if known is None:
        started = datetime.fromisoformat(holder.started_at) if holder.started_at else now
        ctx.state.record_run(holder.run_id, started, TaskResult(ctx.task, Status.FAILED, message))
        try:
            ctx.metrics.publish(
                [
                    Datum("TaskSucceeded", 0, task=ctx.task),
                    Datum("TaskFailed", 1, task=ctx.task),
                ]
            )
        except MetricsError as exc:
            ctx.log.warning("dead run's TaskFailed not published", error=str(exc))
    ctx.log.warning("previous run died", dead_run_id=holder.run_id, lease=holder.expires_at)
    return f"{holder.describe()} died without finishing: recorded as failed"


class Heartbeat:
    """Renews the lease every HEARTBEAT_EVERY_S on its own connection; `lost` once it cannot."""

    def __init__(self, path: Path, task: str, run_id: str, now: datetime) -> None:
        self._path = path
        self._task = task
        self._run_id = run_id
        self._now = now
        self._began = time.monotonic()
        self._stop = threading.Event()
        self.lost: str | None = None
        self._thread = threading.Thread(target=self._beat, name="lease-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        conn = connect(self._path, busy_timeout_ms=10_000, check_same_thread=False)
        try:
            while not self._stop.wait(HEARTBEAT_EVERY_S):
                # The run's own clock: `now` as the run was given it, moved on by what elapsed.
                moment = self._now + timedelta(seconds=time.monotonic() - self._began)
                try:
                    renewed = conn.execute(
                        "UPDATE task_leases SET expires_at = ? WHERE task = ? AND run_id = ?",
                        ((moment + LEASE_TTL).isoformat(), self._task, self._run_id),
                    ).rowcount
                except sqlite3.Error as exc:
                    self.lost = f"renew lease: {exc}"
                    return
                if renewed != 1:
                    self.lost = "the lease was taken over by another run"
                    return
        finally:
            conn.close()

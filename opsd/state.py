"""The operations state database (OPS_STATE_PATH): task runs and what tasks remember.

Never the app database: tasks only read that one (ARCHITECTURE §2). This module owns every
table of it; the tasks use its methods, never its connection.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from opsd.clock import utcnow
from opsd.database import SQLITE_HEADER, DatabaseError, connect
from opsd.results import Status, TaskResult
from opsd.settings import ConfigError, Settings


class StateError(ConfigError):
    """OPS_STATE_PATH cannot be opened as the ops state database; the message says why."""


# Every table: its columns (all NOT NULL but those in _NULLABLE) and its primary key. Files
# written before this declaration keep their own DDL (budget_alerts: a UNIQUE key, no primary
# key); columns added here later are added to old files on open.
TABLES: dict[str, tuple[dict[str, type], str | tuple[str, ...]]] = {
    "task_runs": (
        {
            "run_id": str,
            "task": str,
            "started_at": str,
            "finished_at": str,
            "status": str,
            "duration_s": float,
            "message": str,
            "details": str,
        },
        "run_id",
    ),
    "kv": (dict(key=str, value=str, updated_at=str), "key"),
    # One SNS alert per threshold per budget period (tasks/costs/alerts.py).
    "budget_alerts": (
        dict(budget=str, period=str, threshold=str, run_id=str, claimed_at=str, message_id=str),
        ("budget", "period", "threshold"),
    ),
    # At most one Cost Explorer request a day (tasks/costs/breakdown.py).
    "cost_explorer_requests": (dict(day=str, run_id=str, requested_at=str, answer=str), "day"),
    "restore_drills": (
        dict(key=str, drilled_at=str, run_id=str, passed=int, message=str),
        ("key", "drilled_at", "run_id"),
    ),
    "task_leases": (dict(task=str, run_id=str, expires_at=str, holder=str), "task"),
}
_NULLABLE = {"message_id", "answer", "holder"}
_WANTED = {(name, None) for name in TABLES} | {("index", "task_runs_by_task")}
_WANTED |= {(name, column) for name, (columns, _) in TABLES.items() for column in columns}

# An alert claim never confirmed (the run died between claiming and publishing) is taken over.
STALE_CLAIM = timedelta(minutes=15)
# A lease lapses this long after its holder's last heartbeat.
LEASE_TTL = timedelta(minutes=2)
HEARTBEAT_EVERY_S = LEASE_TTL.total_seconds() / 4
# restore_drills.passed: 1 passed, 0 failed, -1 not run (the drill could not run here, e.g. a
# full scratch disk: it says nothing about the backup).
_NOT_RUN = -1


@dataclass(frozen=True)
class DrillRecord:
    key: str
    drilled_at: str
    run_id: str
    passed: bool | None  # None: not run
    message: str

    @property
    def verdict(self) -> str:
        if self.passed is None:
            return "not run"
        return "passed" if self.passed else "FAILED"


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
    # taken: the dead run whose lease was left behind; else the holder
    holder: LeaseHolder | None
    # the dead run had not recorded itself: it is now, as failed (tell the metrics too)
    recorded_dead_run: bool = False


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

    @classmethod
    def for_settings(cls, settings: Settings) -> OpsState:
        return cls(settings.ops_state_path, settings.sqlite_busy_timeout_ms)

    def _open(self, busy_timeout_ms: int) -> None:
        conn = connect(self.path, busy_timeout_ms=busy_timeout_ms, check_same_thread=False)
        try:
            self.db = Database(conn, recursive_triggers=False, execute_plugins=False)
            self._ensure_schema()
        except sqlite3.Error:
            conn.close()
            raise

    def _ensure_schema(self) -> None:
        """Creates what is missing (a new file: everything) in one transaction; an up-to-date
        file costs one query."""
        if self._schema() >= _WANTED:
            return
        with self.transaction():
            have = self._schema()
            for name, (columns, pk) in TABLES.items():
                table = self.db.table(name)
                if (name, None) not in have:
                    table.create(columns, pk=pk, not_null=set(columns) - _NULLABLE)
                    continue
                for column, kind in columns.items():
                    if (name, column) not in have:
                        table.add_column(column, kind)
            self.db.table("task_runs").create_index(
                ["task", "finished_at"], index_name="task_runs_by_task", if_not_exists=True
            )

    def _schema(self) -> set[tuple[str, str | None]]:
        """(table, None) and (table, column) of every table; ("index", name) of every index."""
        rows = self.db.execute(
            "SELECT m.name, p.name FROM sqlite_master m, pragma_table_info(m.name) p "
            "WHERE m.type = 'table' UNION SELECT name, NULL FROM sqlite_master "
            "WHERE type = 'table' UNION SELECT 'index', name FROM sqlite_master "
            "WHERE type = 'index'"
        )
        return set(rows.fetchall())

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> OpsState:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One write transaction, taken at once (BEGIN IMMEDIATE): all of it or nothing."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
            self.db.execute("COMMIT")
        except BaseException:
            self.db.rollback()
            raise

    def _insert_new(self, table: str, row: dict[str, Any]) -> bool:
        """INSERT OR IGNORE: whether the row went in (no row with its key was there)."""
        before = self.db.conn.total_changes
        self.db.table(table).insert(row, ignore=True)
        return self.db.conn.total_changes > before

    def _changed(self, sql: str, *parameters: Any) -> int:
        return self.db.execute(sql, parameters).rowcount

    # Runs and key/value --------------------------------------------------------------------

    def record_run(self, run_id: str, started_at: datetime, result: TaskResult) -> None:
        row = {
            "run_id": run_id,
            "task": result.task,
            "started_at": started_at.isoformat(),
            "finished_at": utcnow().isoformat(),
            "status": str(result.status),
            "duration_s": round(result.duration_s, 3),
            "message": result.message,
            "details": json.dumps(result.details, default=str),
        }
        self.db.table("task_runs").insert(row, replace=True)

    def last_runs(self) -> dict[str, dict[str, Any]]:
        """The newest run of each task, by task name."""
        rows = self.db.query(
            "SELECT task, run_id, started_at, finished_at, status, duration_s, message "
            "FROM task_runs t WHERE finished_at = "
            "(SELECT max(finished_at) FROM task_runs WHERE task = t.task)"
        )
        return {row["task"]: row for row in rows}

    def get(self, key: str, default: Any = None) -> Any:
        """The stored value; text that is no JSON comes back as it is."""
        row = self.db.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        if row is None:
            return default
        try:
            return json.loads(row[0])
        except json.JSONDecodeError:
            return row[0]

    def set(self, key: str, value: Any, at: datetime | None = None) -> None:
        stamp = (at or utcnow()).isoformat()
        row = dict(key=key, value=json.dumps(value, default=str), updated_at=stamp)
        self.db.table("kv").upsert(row, pk="key")

    def delete(self, key: str) -> None:
        self.db.table("kv").delete_where("key = ?", [key])

    # Budget alerts and the daily Cost Explorer request ----------------------------------

    def claim_alert(
        self, budget: str, period: str, threshold: str, run_id: str, now: datetime
    ) -> bool:
        """True when this run may send the alert; False when another run sent or sends it."""
        key = dict(budget=budget, period=period, threshold=threshold)
        if self._insert_new("budget_alerts", key | dict(run_id=run_id, claimed_at=now.isoformat())):
            return True
        taken_over = self._changed(
            "UPDATE budget_alerts SET run_id = ?, claimed_at = ? WHERE budget = ? AND period = ? "
            "AND threshold = ? AND message_id IS NULL AND claimed_at < ?",
            *(run_id, now.isoformat(), budget, period, threshold),
            (now - STALE_CLAIM).isoformat(),
        )
        return taken_over == 1

    def confirm_alert(self, budget: str, period: str, threshold: str, message_id: str) -> None:
        self._changed(
            "UPDATE budget_alerts SET message_id = ? WHERE budget = ? AND period = ? "
            "AND threshold = ?",
            *(message_id, budget, period, threshold),
        )

    def release_alert(self, budget: str, period: str, threshold: str, run_id: str) -> None:
        self.db.table("budget_alerts").delete_where(
            "budget = ? AND period = ? AND threshold = ? AND run_id = ? AND message_id IS NULL",
            [budget, period, threshold, run_id],
        )

    def claim_cost_request(self, day: str, run_id: str, now: datetime) -> bool:
        """True when this run is the day's first: it asks Cost Explorer and stores the answer."""
        row = dict(day=day, run_id=run_id, requested_at=now.isoformat())
        return self._insert_new("cost_explorer_requests", row)

    def cost_answer(self, day: str) -> Any:
        """The stored answer of the day's request; None while the claiming run is asking."""
        row = self.db.execute(
            "SELECT answer FROM cost_explorer_requests WHERE day = ?", (day,)
        ).fetchone()
        return None if row is None or row[0] is None else json.loads(row[0])

    def store_cost_answer(self, day: str, answer: Any) -> None:
        sql = "UPDATE cost_explorer_requests SET answer = ? WHERE day = ?"
        self._changed(sql, json.dumps(answer), day)

    # Restore drills ---------------------------------------------------------------------

    def record_drill(
        self, key: str, run_id: str, passed: bool | None, message: str, at: datetime
    ) -> None:
        """`passed=None`: the drill did not run to a verdict."""
        verdict = _NOT_RUN if passed is None else int(passed)
        row = dict(key=key, drilled_at=at.isoformat(timespec="seconds"), run_id=run_id)
        self.db.table("restore_drills").insert(row | dict(passed=verdict, message=message))

    def latest_drills(self) -> dict[str, DrillRecord]:
        """The newest drill of each backup key that reached a verdict, else its newest attempt."""
        rows = self.db.execute(
            "SELECT key, drilled_at, run_id, passed, message FROM restore_drills d "
            "WHERE rowid = (SELECT rowid FROM restore_drills WHERE key = d.key "
            f"ORDER BY passed <> {_NOT_RUN} DESC, drilled_at DESC, rowid DESC LIMIT 1)"
        )
        return {
            key: DrillRecord(key, at, run_id, None if passed == _NOT_RUN else bool(passed), text)
            for key, at, run_id, passed, text in rows
        }

    # Leases: one run at a time of whatever takes the lease's name -----------------------

    def take_lease(
        self, name: str, run_id: str, now: datetime, holder: dict[str, Any] | None = None
    ) -> LeaseOutcome:
        """Take the lease unless a live run holds it; atomic across processes. A lease left
        behind by a dead run (lapsed, or its process gone on this host) is taken over and that
        run recorded as failed, unless it recorded itself. `holder` names this process by
        default: {"host", "pid", "started_at"}, and "task" when it is not the lease's name."""
        holder = holder or this_process(now)
        with self.transaction():
            row = self.db.execute(
                "SELECT run_id, expires_at, holder FROM task_leases WHERE task = ?", (name,)
            ).fetchone()
            previous, recorded = None, False
            if row is not None:
                previous = LeaseHolder(row[0], row[1], _json_object(row[2]))
                if row[1] >= now.isoformat() and not _holder_is_gone(previous.holder):
                    return LeaseOutcome(False, previous)
                recorded = self._record_dead_run(name, previous, run_id, now)
            row = dict(task=name, run_id=run_id, expires_at=(now + LEASE_TTL).isoformat())
            self.db.table("task_leases").upsert(row | dict(holder=json.dumps(holder)), pk="task")
        return LeaseOutcome(True, previous, recorded)

    def _record_dead_run(self, name: str, dead: LeaseHolder, run_id: str, now: datetime) -> bool:
        if self.db.execute("SELECT 1 FROM task_runs WHERE run_id = ?", (dead.run_id,)).fetchone():
            return False
        message = (
            f"died without finishing (killed, out of memory or host lost); its lease was left "
            f"to {dead.expires_at} and taken over by run {run_id}"
        )
        started = datetime.fromisoformat(dead.started_at) if dead.started_at else now
        task = str(dead.holder.get("task", name))
        self.record_run(dead.run_id, started, TaskResult(task, Status.FAILED, message))
        return True

    def renew_lease(self, name: str, run_id: str, until: datetime) -> bool:
        """False when the lease is no longer this run's (taken over after it lapsed)."""
        sql = "UPDATE task_leases SET expires_at = ? WHERE task = ? AND run_id = ?"
        return self._changed(sql, until.isoformat(), name, run_id) == 1

    def release_lease(self, name: str, run_id: str) -> None:
        self.db.table("task_leases").delete_where("task = ? AND run_id = ?", [name, run_id])

    @contextmanager
    def lease(self, name: str, run_id: str, now: datetime) -> Iterator[Lease]:
        """`take_lease`, and while it is held a heartbeat keeps pushing its expiry LEASE_TTL
        ahead, so it lapses within LEASE_TTL of a run that is killed; released on the way out."""
        lease = Lease(self.path, name, run_id, now, self.take_lease(name, run_id, now))
        if not lease.taken:
            yield lease
            return
        try:
            with lease:
                yield lease
        finally:
            self.release_lease(name, run_id)


class Lease(threading.Thread):
    """A taken lease's heartbeat: renews it every HEARTBEAT_EVERY_S on its own connection;
    `lost` says why once it cannot."""

    def __init__(
        self, path: Path, name: str, run_id: str, now: datetime, outcome: LeaseOutcome
    ) -> None:
        super().__init__(name="lease-heartbeat", daemon=True)
        self.path, self.lease_name, self.run_id, self.now = path, name, run_id, now
        self.taken, self.holder = outcome.taken, outcome.holder
        self.recorded_dead_run = outcome.recorded_dead_run
        self.began = time.monotonic()
        self.stopping = threading.Event()
        self.lost: str | None = None

    def __enter__(self) -> Lease:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.join()

    def run(self) -> None:
        try:
            with OpsState(self.path, busy_timeout_ms=10_000) as state:
                while not self.stopping.wait(HEARTBEAT_EVERY_S):
                    # The run's own clock: `now` as the run was given it, moved on since.
                    moment = self.now + timedelta(seconds=time.monotonic() - self.began)
                    if not state.renew_lease(self.lease_name, self.run_id, moment + LEASE_TTL):
                        self.lost = "the lease was taken over by another run"
                        return
        except (sqlite3.Error, ConfigError) as exc:
            self.lost = f"renew lease: {exc}"


def this_process(started_at: datetime) -> dict[str, Any]:
    return {"host": socket.gethostname(), "pid": os.getpid(), "started_at": started_at.isoformat()}


def _holder_is_gone(holder: dict[str, Any]) -> bool:
    """Known dead: it ran on this host and its process no longer exists."""
    return holder.get("host") == socket.gethostname() and not process_alive(holder)


def _json_object(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text) if text else {}
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


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

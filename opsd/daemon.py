"""The operations daemon: every scheduled task on its schedule, in one process.

Runs each task through the same runner as ECS does. At most one run of a task at a time;
missed runs are coalesced; on shutdown the running tasks are asked to stop and are given
a bounded time to finish or abort cleanly.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import structlog
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, EVENT_JOB_MISSED, JobEvent
from apscheduler.schedulers.background import BackgroundScheduler

from opsd.aws import AwsClients
from opsd.results import TaskResult
from opsd.runner import TaskContext, execute
from opsd.schedule import TaskSpec
from opsd.settings import Settings
from opsd.state import OpsState, process_alive

JOB_DEFAULTS = {"coalesce": True, "max_instances": 1, "misfire_grace_time": 15 * 60}
SHUTDOWN_GRACE_S = 30.0
DAEMON_KEY = "daemon"
NEXT_RUNS_KEY = "daemon.next_runs"

log = structlog.get_logger()


class Daemon:
    def __init__(
        self, settings: Settings, registry: Mapping[str, TaskSpec], clients: AwsClients
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.clients = clients
        self.stop = threading.Event()
        self.scheduler = BackgroundScheduler(timezone=UTC, job_defaults=JOB_DEFAULTS)
        self._locks = {name: threading.Lock() for name in registry}
        self._running: set[threading.Thread] = set()
        self._running_lock = threading.Lock()

    def run_task(self, name: str, argv: Iterable[str] = ()) -> TaskResult | None:
        """One run of `name` unless one is already under way (then None)."""
        if self.stop.is_set():
            return None
        lock = self._locks[name]
        if not lock.acquire(blocking=False):
            log.info("task skipped", task=name, reason="previous run still under way")
            return None
        thread = threading.current_thread()
        with self._running_lock:
            self._running.add(thread)
        spec = self.registry[name]
        ctx = TaskContext(settings=self.settings, clients=self.clients, task=name, stop=self.stop)
        try:
            return execute(spec, ctx, spec.parser().parse_args(list(argv)))
        finally:
            ctx.close()
            with self._running_lock:
                self._running.discard(thread)
            lock.release()

    def start(self, initial_runs: Iterable[str] = ()) -> None:
        for spec in self.registry.values():
            trigger = spec.trigger()
            if trigger is not None:
                self.scheduler.add_job(
                    self.run_task, trigger, args=[spec.name], id=spec.name, name=spec.name
                )
        self.scheduler.add_listener(
            self._after_job, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR | EVENT_JOB_MISSED
        )
        self.scheduler.start()
        self._announce()
        self._save_next_runs()
        runs = list(initial_runs)
        if runs:
            threading.Thread(
                target=self._initial_runs, args=(runs,), name="initial-runs", daemon=True
            ).start()

    def _initial_runs(self, names: list[str]) -> None:
        for name in names:
            self.run_task(name)  # None once a shutdown has begun

    def _announce(self) -> None:
        with OpsState.for_settings(self.settings) as state:
            state.set(
                DAEMON_KEY,
                {
                    "pid": os.getpid(),
                    "host": socket.gethostname(),
                    "started_at": datetime.now(UTC).isoformat(),
                },
            )

    def next_runs(self) -> dict[str, datetime | None]:
        return {job.id: job.next_run_time for job in self.scheduler.get_jobs()}

    def _after_job(self, event: JobEvent) -> None:
        if event.code == EVENT_JOB_MISSED:
            log.warning("run missed", task=event.job_id)
        self._save_next_runs()

    def _save_next_runs(self) -> None:
        """So that `opsd status`, in another process, shows when each task runs next."""
        state = OpsState.for_settings(self.settings)
        try:
            state.set(
                NEXT_RUNS_KEY,
                {k: v.isoformat() if v else None for k, v in self.next_runs().items()},
            )
        except Exception as exc:
            log.warning("next runs not saved", error=str(exc))
        finally:
            state.close()

    def shutdown(self, grace_s: float = SHUTDOWN_GRACE_S) -> bool:
        """Ask running tasks to stop and wait up to `grace_s`; True when all finished."""
        self.stop.set()
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            with self._running_lock:
                running = [t for t in self._running if t.is_alive()]
            if not running:
                return True
            for thread in running:
                thread.join(timeout=max(0.0, min(1.0, deadline - time.monotonic())))
        with self._running_lock:
            left = sorted(t.name for t in self._running if t.is_alive())
        log.error("tasks still running at shutdown", threads=left, grace_s=grace_s)
        return not left


def status_rows(
    settings: Settings, registry: Mapping[str, TaskSpec], now: datetime | None = None
) -> list[dict[str, Any]]:
    """Per task: schedule, last run and its status, and the next scheduled run."""
    now = now or datetime.now(UTC)
    with OpsState.for_settings(settings) as state:
        last = state.last_runs()
        planned = state.get(NEXT_RUNS_KEY, {}) if process_alive(state.get(DAEMON_KEY)) else {}
    rows = []
    for spec in registry.values():
        trigger = spec.trigger()
        next_run = trigger.get_next_fire_time(None, now) if trigger is not None else None
        if planned.get(spec.name):
            next_run = datetime.fromisoformat(planned[spec.name])
        run = last.get(spec.name, {})
        rows.append(
            {
                "task": spec.name,
                "schedule": spec.schedule or "on demand",
                "last_run": run.get("finished_at"),
                **{key: run.get(key) for key in ("status", "duration_s", "message")},
                "next_run": next_run.isoformat() if next_run else None,
            }
        )
    return rows


def daemon_info(settings: Settings) -> dict[str, Any] | None:
    """What the last daemon to start recorded, with whether its process is alive here."""
    with OpsState.for_settings(settings) as state:
        info = state.get(DAEMON_KEY)
    return {**info, "alive": process_alive(info)} if info else None

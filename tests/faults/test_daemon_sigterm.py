"""SIGTERM to `opsd run` (local mode, no app) while each task is under way: the daemon stops
within its 30 s grace, exits 0, and leaves the ops state consistent: every run that
started is recorded as finished, the state database passes integrity_check, and no
scratch file is left behind. The signal is sent only once the task is inside an AWS call,
so it cannot miss the task; a task with a stop point after that call records that it was
stopped."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from opsd.daemon import SHUTDOWN_GRACE_S
from tests.conftest import create_app_database
from tests.faults.figures import record_figure
from tests.task_processes import ROOT, free_port, scratch_leftovers

pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.timeout(300)]
BIN = Path(sys.executable).parent
TASKS = ("backup", "verify-backup", "lifecycle-check", "budget-poll", "publish-metrics")

# Loaded into the daemon through PYTHONPATH: the daemon's run of SLOW_TASK (named by the
# daemon's own run_task) takes 0.4 s longer in each AWS call its thread makes, and the first
# such call creates IN_CALL_MARKER: the test signals once it sees that file.
SLOW_ONE_TASK = """
import os
import pathlib
import threading
import time

import botocore.client

import opsd.daemon

_make_api_call = botocore.client.BaseClient._make_api_call
_run_task = opsd.daemon.Daemon.run_task
_slow_task = os.environ["SLOW_TASK"]
_in_call = pathlib.Path(os.environ["IN_CALL_MARKER"])
_running = threading.local()


def _run_task_named(self, name, *args, **kwargs):
    _running.task = name
    try:
        return _run_task(self, name, *args, **kwargs)
    finally:
        _running.task = None


def _slow(self, operation_name, params):
    if getattr(_running, "task", None) == _slow_task:
        _in_call.touch()
        time.sleep(0.4)
    return _make_api_call(self, operation_name, params)


opsd.daemon.Daemon.run_task = _run_task_named
botocore.client.BaseClient._make_api_call = _slow
"""
# What each task's run records when the signal lands in one of its AWS calls: the tasks that
# check for a stop after that call stop; budget-poll and a lifecycle-check without --fix have
# no stop point and finish their run (within the grace).
RECORDED_AFTER_SIGNAL = {
    "backup": ("failed", "stopped: shutdown requested"),
    "verify-backup": ("failed", "stopped: shutdown requested"),
    "lifecycle-check": ("ok", None),
    "budget-poll": ("ok", None),
    "publish-metrics": ("failed", "stopped: shutdown requested"),
}


class Daemon:
    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.started: list[str] = []
        self.log_path = log_path
        self.process = subprocess.Popen(
            [str(BIN / "opsd"), "run", "--no-app", "--aws-port", str(free_port())],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        with self.log_path.open("w") as log:
            for line in self.process.stdout:
                log.write(line)
                try:
                    event = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if event.get("event") == "task started":
                    self.started.append(event["task"])

    def wait_for(self, arrived: Callable[[], bool], what: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while not arrived():
            assert self.process.poll() is None, self.log_path.read_text()[-2000:]
            assert time.monotonic() < deadline, f"{what} never happened: {self.started}"
            time.sleep(0.05)


def recorded_runs(state: Path) -> list[tuple[str, str, str, str]]:
    conn = sqlite3.connect(state)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        return conn.execute(
            "SELECT task, status, message, finished_at FROM task_runs ORDER BY started_at"
        ).fetchall()
    finally:
        conn.close()


@pytest.mark.parametrize("task", TASKS)
def test_sigterm_during_a_task_stops_the_daemon_cleanly(
    task: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(SLOW_ONE_TASK)
    data = tmp_path / "data"
    create_app_database(data / "app.db", analyses=300)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "AWS_"))}
    env.update(
        DATABASE_PATH=str(data / "app.db"),
        OPS_STATE_PATH=str(data / "ops-state.db"),
        SCRATCH_DIR=str(tmp_path / "scratch"),
        LOG_FORMAT="json",
        PYTHONUNBUFFERED="1",
        PYTHONPATH=f"{hooks}{os.pathsep}{ROOT}",
        SLOW_TASK=task,
        IN_CALL_MARKER=str(tmp_path / "in-call"),
    )
    daemon = Daemon(env, tmp_path / "opsd.log")
    try:
        daemon.wait_for(lambda: task in daemon.started, f"the start of {task}")
        daemon.wait_for((tmp_path / "in-call").exists, f"an AWS call of {task}")
        signalled, signalled_at = time.monotonic(), datetime.now(UTC)
        daemon.process.send_signal(signal.SIGTERM)
        code = daemon.process.wait(timeout=SHUTDOWN_GRACE_S + 15)
        stopped_in = time.monotonic() - signalled
    finally:
        if daemon.process.poll() is None:
            daemon.process.kill()
            daemon.process.wait()
    daemon._reader.join(10)

    log = daemon.log_path.read_text()
    assert code == 0, log[-2000:]
    assert stopped_in < SHUTDOWN_GRACE_S, f"stopped in {stopped_in:.1f} s"
    runs = recorded_runs(data / "ops-state.db")
    assert [name for name, *_ in runs] == daemon.started, (runs, daemon.started)
    name, status, message, finished_at = runs[-1]
    assert name == task
    assert datetime.fromisoformat(finished_at) > signalled_at, "the run ended before the signal"
    expected_status, expected_message = RECORDED_AFTER_SIGNAL[task]
    assert status == expected_status, runs[-1]
    assert expected_message is None or message == expected_message, runs[-1]
    assert scratch_leftovers(tmp_path / "scratch") == []
    record_figure(
        request.config,
        "faults",
        f"SIGTERM during {task}: stopped in {stopped_in:.1f} s (grace {SHUTDOWN_GRACE_S:.0f} s), "
        f"its run recorded as {status}",
    )

"""SIGTERM to `opsd run` (local mode, no app) while each task is under way: the daemon stops
within its 30 s grace, exits 0, and leaves the ops state consistent: every run that
started is recorded as finished, the state database passes integrity_check, and no
scratch file is left behind."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from opsd.daemon import SHUTDOWN_GRACE_S
from tests.conftest import create_app_database
from tests.faults.figures import record_figure
from tests.task_processes import ROOT, free_port, scratch_leftovers

pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.timeout(300)]
BIN = Path(sys.executable).parent
TASKS = ("backup", "verify-backup", "lifecycle-check", "budget-poll", "publish-metrics")

# Loaded into the daemon through PYTHONPATH: while the task named by SLOW_TASK runs, every
# AWS call waits, so that the signal surely lands in the middle of that task.
SLOW_ONE_TASK = """
import os
import sys
import time

import botocore.client

_make_api_call = botocore.client.BaseClient._make_api_call
_slow_task = os.environ["SLOW_TASK"]


def _running_task():
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name == "execute" and "spec" in frame.f_locals:
            return getattr(frame.f_locals["spec"], "name", None)
        frame = frame.f_back
    return None


def _slow(self, operation_name, params):
    if _running_task() == _slow_task:
        time.sleep(0.4)
    return _make_api_call(self, operation_name, params)


botocore.client.BaseClient._make_api_call = _slow
"""


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

    def wait_for_start_of(self, task: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while task not in self.started:
            assert self.process.poll() is None, self.log_path.read_text()[-2000:]
            assert time.monotonic() < deadline, f"{task} never started: {self.started}"
            time.sleep(0.05)


def recorded_runs(state: Path) -> list[tuple[str, str, str]]:
    conn = sqlite3.connect(state)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        return conn.execute(
            "SELECT task, status, message FROM task_runs ORDER BY started_at"
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
    )
    daemon = Daemon(env, tmp_path / "opsd.log")
    try:
        daemon.wait_for_start_of(task)
        time.sleep(1.0)
        signalled = time.monotonic()
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
    assert [name for name, _, _ in runs] == daemon.started, (runs, daemon.started)
    name, status, message = runs[-1]
    assert name == task
    assert status == "ok" or message == "stopped: shutdown requested", runs[-1]
    assert scratch_leftovers(tmp_path / "scratch") == []
    record_figure(
        request.config,
        "faults",
        f"SIGTERM during {task}: stopped in {stopped_in:.1f} s (grace {SHUTDOWN_GRACE_S:.0f} s), "
        f"its run recorded as {status}",
    )

"""`opsd run` as a process on free ports in a folder of its own: the helpers of the end-to-end
tests of the local stack (restarts, the README's runbook)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from opsd.local_aws import port_in_use
from tests.task_processes import free_port

BIN = Path(sys.executable).parent
T = TypeVar("T")


def wait_for(check: Callable[[], T | None], timeout_s: float, what: str) -> T:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


def stack_env(folder: Path) -> dict[str, str]:
    """The environment of a user in `folder` who set nothing (defaults: data/app.db, ...)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PYTHON"))}
    for name in ("DATABASE_PATH", "OPS_STATE_PATH", "SCRATCH_DIR", "ALERT_TOPIC_ARN"):
        env.pop(name, None)
    env.update(LOG_FORMAT="json", PYTHONUNBUFFERED="1", HOME=str(folder))
    return env


@dataclass
class LocalStack:
    """`opsd run` started in `folder`; ports stay the same across restarts."""

    folder: Path
    app_port: int = field(default_factory=free_port)
    aws_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def env(self) -> dict[str, str]:
        return stack_env(self.folder)

    @property
    def log_path(self) -> Path:
        return self.folder / f"opsd-{self.starts}.log"

    def start(self) -> None:
        self.starts += 1
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    str(BIN / "opsd"),
                    "run",
                    "--app-port",
                    str(self.app_port),
                    "--aws-port",
                    str(self.aws_port),
                ],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.folder,
                start_new_session=True,  # its own process group, as a job in a terminal
            )
        wait_for(self.first_runs_done, 150, f"the first runs of opsd run #{self.starts}")

    def status(self) -> dict[str, dict[str, Any]]:
        out = subprocess.run(
            [str(BIN / "opsd"), "status", "--json"],
            env=self.env,
            cwd=self.folder,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return {row["task"]: row for row in json.loads(out)["tasks"]}

    def first_runs_done(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"opsd run exited: {self.log_path.read_text()[-3000:]}")
        if "Press Ctrl-C to stop everything." not in self.log_path.read_text():
            return False
        return all(row["status"] != "running" for row in self.status().values())

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.app_port}/health", timeout=5):
                return True
        except OSError:
            return False

    def stop(self) -> int:
        """Ctrl-C, as in a terminal."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGINT)
        try:
            return self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def kill(self) -> None:
        """kill -9 of the whole job (opsd and the app; the endpoint is in a session of its own)."""
        assert self.process is not None
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        self.process.wait(timeout=30)

    def kill_opsd(self) -> None:
        """kill -9 of `opsd run` alone: the app and the endpoint must stop by themselves."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=30)
        wait_for(lambda: not self.ports_in_use(), 30, "the app and the endpoint to stop")

    def ports_in_use(self) -> bool:
        return any(port_in_use("127.0.0.1", port) for port in (self.app_port, self.aws_port))

    def tasks(self, *args: str) -> subprocess.CompletedProcess[str]:
        """`.venv/bin/python -m tasks ...` by hand in a second terminal, in the same folder."""
        return subprocess.run(
            [sys.executable, "-m", "tasks", *args],
            env=self.env,
            cwd=self.folder,
            capture_output=True,
            text=True,
            timeout=120,
        )

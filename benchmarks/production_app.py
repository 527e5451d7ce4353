"""The app as the image runs it: Dockerfile.prod's CMD and ENV, on a free loopback port,
optionally inside a cgroup v1 memory controller (the 512 MB of a Fargate task).

Shared by the memory benchmark (benchmarks/bench_app_memory.py) and the tests that must use
the production command line (tests/security/test_login_throttle_behind_proxies.py,
tests/load/test_app_memory_in_cgroup.py).
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from benchmarks.harness import BenchmarkError

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile.prod"
IMAGE_BIND = "0.0.0.0:8000"
# The image's paths and listening address; a run sets its own.
LOCAL_ONLY = ("PATH", "DATABASE_PATH", "OPS_STATE_PATH", "SCRATCH_DIR", "APP_HOST", "APP_PORT")
MEMORY_CGROUPS = Path("/sys/fs/cgroup/memory")


def _final_stage(dockerfile: Path) -> str:
    return dockerfile.read_text().rsplit("\nFROM ", 1)[1]


def production_command(port: int, dockerfile: Path = DOCKERFILE) -> list[str]:
    """The image's CMD, listening on 127.0.0.1:`port` instead of 0.0.0.0:8000."""
    stage = _final_stage(dockerfile)
    command = json.loads(stage.split("\nCMD ", 1)[1].splitlines()[0])
    if not any(IMAGE_BIND in part for part in command):
        raise BenchmarkError(f"read {dockerfile.name}: the CMD does not bind {IMAGE_BIND}")
    return [part.replace(IMAGE_BIND, f"127.0.0.1:{port}") for part in command]


def production_env(dockerfile: Path = DOCKERFILE) -> dict[str, str]:
    """The image's ENV, except its paths and listening address."""
    stage = _final_stage(dockerfile).replace("\\\n", " ")
    env: dict[str, str] = {}
    for line in stage.splitlines():
        if line.startswith("ENV "):
            for item in shlex.split(line[4:]):
                name, _, value = item.partition("=")
                if name not in LOCAL_ONLY:
                    env[name] = value
    return env


@dataclass
class MemoryCgroup:
    """A cgroup v1 memory controller of its own, removed on exit."""

    path: Path

    @classmethod
    def available(cls) -> bool:
        return (MEMORY_CGROUPS / "memory.limit_in_bytes").exists() and os.access(
            MEMORY_CGROUPS, os.W_OK
        )

    def read(self, name: str) -> str:
        return (self.path / name).read_text()

    @property
    def max_usage_bytes(self) -> int:
        return int(self.read("memory.max_usage_in_bytes"))

    @property
    def oom_kills(self) -> int:
        for line in self.read("memory.oom_control").splitlines():
            if line.startswith("oom_kill "):
                return int(line.split()[1])
        return 0

    @property
    def failcnt(self) -> int:
        return int(self.read("memory.failcnt"))


@contextmanager
def memory_cgroup(name: str, limit_bytes: int) -> Iterator[MemoryCgroup]:
    path = MEMORY_CGROUPS / name
    path.mkdir()
    try:
        (path / "memory.limit_in_bytes").write_text(str(limit_bytes))
        # No swap to hide in: at the limit the kernel reclaims cache or kills, as on Fargate.
        swap = path / "memory.memsw.limit_in_bytes"
        if swap.exists():
            swap.write_text(str(limit_bytes))
        yield MemoryCgroup(path)
    finally:
        _empty_and_remove(path)


def _empty_and_remove(path: Path) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        pids = [p for p in (path / "cgroup.procs").read_text().split() if p]
        if not pids:
            break
        for pid in pids:  # only ever the processes this module started there
            with suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
        time.sleep(0.1)
    path.rmdir()


class ProductionApp:
    """`with ProductionApp(env, log_path) as app:` — the image's command, serving."""

    def __init__(
        self,
        env: dict[str, str],
        log_path: Path,
        cgroup: MemoryCgroup | None = None,
        dockerfile: Path = DOCKERFILE,
    ) -> None:
        from benchmarks.local_s3 import free_port

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.command = production_command(self.port, dockerfile)
        self.env = {
            **production_env(dockerfile),
            **env,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "PYTHONPATH": str(dockerfile.parent),
        }
        self.log_path = log_path
        self.cgroup = cgroup
        self.cwd = dockerfile.parent
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> ProductionApp:
        procs = str(self.cgroup.path / "cgroup.procs") if self.cgroup else None

        def enter_cgroup() -> None:  # in the child, before exec: everything it starts is in
            if procs:
                with open(procs, "w") as handle:
                    handle.write(str(os.getpid()))

        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                self.command,
                cwd=self.cwd,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=enter_cgroup if procs else None,
                start_new_session=True,
            )
        self._wait_healthy()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)  # gunicorn: graceful stop of its worker
        try:
            self.process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def worker_pid(self) -> int:
        """gunicorn's (single) worker: the master's child."""
        if self.process is None:
            raise BenchmarkError("the app is not running")
        master = self.process.pid
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        if len(children) != 1:
            raise BenchmarkError(f"find the gunicorn worker: master has children {children}")
        return int(children[0])

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                tail = self.log_path.read_text(errors="replace").strip().splitlines()[-3:]
                raise BenchmarkError(
                    f"start the app: it exited {self.process.returncode}: {' | '.join(tail)}"
                )
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2):
                    return
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise BenchmarkError(f"start the app: /health did not answer within 120 s ({self.url})")


def peak_rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise BenchmarkError(f"read the peak RSS of process {pid}: no VmHWM")

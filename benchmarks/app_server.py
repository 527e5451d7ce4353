"""The app as `python -m app serve` runs it, on a fresh SQLite database beside moto's
server, for the benchmarks that load it (bench_app, bench_capacity)."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from benchmarks import cgroup_limits
from benchmarks.harness import BenchmarkError
from benchmarks.local_s3 import LocalS3, free_port

ROOT = Path(__file__).resolve().parents[1]
BUCKETS = ("drawing-analysis-drawings-local", "drawing-analysis-models-local")


@dataclass(frozen=True)
class Server:
    url: str
    pid: int
    database: Path


@contextmanager
def app_server(work: Path, cgroup: cgroup_limits.LimitedCgroup | None = None) -> Iterator[Server]:
    """moto's server and `python -m app serve` on a fresh SQLite database; the app in `cgroup`
    when one is given."""
    work.mkdir(parents=True, exist_ok=True)
    database = work / "app.db"
    for leftover in (database, work / "app.db-journal"):
        leftover.unlink(missing_ok=True)
    with LocalS3(work / "moto.log", bucket="drawing-analysis-backups-local") as s3:
        for bucket in BUCKETS:
            s3.client().create_bucket(Bucket=bucket)
        port = free_port()
        env = {
            **s3.env(),
            "DATABASE_PATH": str(database),
            "ADMIN_PASSWORD": "benchmark-only-password",
            "LOG_LEVEL": "WARNING",
            "LOG_FORMAT": "json",
            "PYTHONPATH": str(ROOT),
        }
        with (work / "app.log").open("wb") as log:
            app = subprocess.Popen(
                [sys.executable, "-m", "app", "serve", "--port", str(port)],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            if cgroup is not None:
                for directory in cgroup.directories:
                    (directory / "cgroup.procs").write_text(str(app.pid))
            url = f"http://127.0.0.1:{port}"
            wait_healthy(url, app)
            yield Server(url, app.pid, database)
        finally:
            app.terminate()
            app.wait(timeout=30)


def wait_healthy(url: str, app: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if app.poll() is not None:
            raise BenchmarkError(f"start the app: it exited {app.returncode} (see app.log)")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    raise BenchmarkError("start the app: /health did not answer within 60 s")

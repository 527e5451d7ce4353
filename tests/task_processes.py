"""Running tasks as their own processes against one local S3 endpoint, and checking what
they leave behind: the helpers of the end-to-end, fault and load suites."""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

from opsd.aws import AwsClients
from opsd.results import Status
from opsd.runner import TaskContext
from opsd.settings import Settings, load_settings
from tasks.backups.store import BackupStore
from tests.tasks.backup_helpers import run_task

ROOT = Path(__file__).resolve().parents[1]
BUCKET = "fault-backups"


def trials(full: int, under_ci: int, variable: str) -> int:
    """`variable` when set, else the reduced count under CI=true, else the full count."""
    if os.environ.get(variable):
        return int(os.environ[variable])
    return under_ci if os.environ.get("CI", "").lower() == "true" else full


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def moto_endpoint(*buckets: str) -> Iterator[str]:
    """moto's server on loopback, emptied, with `buckets` created; yields its URL."""
    port = free_port()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    try:
        # moto's state lives in this process and outlives a server: start from nothing.
        urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"))
        s3 = s3_client(url)
        for bucket in buckets:
            s3.create_bucket(Bucket=bucket)
        yield url
    finally:
        server.stop()


def s3_client(endpoint: str) -> Any:
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")


def task_env(endpoint: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a `python -m tasks` child: this test's paths, the given endpoint."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.update(
        AWS_ENDPOINT_URL=endpoint,
        S3_BUCKET_BACKUPS=BUCKET,
        DATABASE_PATH=str(tmp_path / "data" / "app.db"),
        OPS_STATE_PATH=str(tmp_path / "data" / "ops-state.db"),
        SCRATCH_DIR=str(tmp_path / "scratch"),
        LOG_FORMAT="json",
        PYTHONPATH=str(ROOT),
    )
    env.update(extra)
    return env


def tasks_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "tasks", *args]


def run_tasks_cli(
    env: dict[str, str], *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        tasks_command(*args), env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


def last_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[-1] if lines else ""


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def settings_for(endpoint: str, prefix: str = "", **overrides: Any) -> Settings:
    return load_settings(
        aws_endpoint_url=endpoint, s3_bucket_backups=BUCKET, backup_prefix=prefix, **overrides
    )


def drill_every_backup(settings: Settings) -> dict[str, str]:
    """The restore drill (verify-backup) on every listed backup: key → its message.
    Raises AssertionError naming the first backup that does not pass."""
    clients = AwsClients(settings)
    outcomes: dict[str, str] = {}
    for backup in BackupStore.for_settings(settings, clients("s3")).list():
        ctx = TaskContext(settings=settings, clients=clients, task="verify-backup")
        try:
            result = run_task(ctx, key=backup.key)
        finally:
            ctx.close()
        assert result.status is Status.OK, f"{backup.key}: {result.message}"
        outcomes[backup.key] = result.message
    return outcomes


def scratch_leftovers(scratch: Path) -> list[str]:
    return sorted(p.name for p in scratch.iterdir()) if scratch.exists() else []

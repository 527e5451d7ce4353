"""moto's server on loopback as the S3 endpoint of a benchmark run.

It runs as its own process (`moto_server`), so its CPU time and memory are not counted
in any contender's figures; it still shares the machine's cores with them, which is why
contenders are only ever compared within one run.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

import boto3

from benchmarks.harness import BenchmarkError

REGION = "us-east-1"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}
_START_TIMEOUT_S = 30.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def moto_server_command(port: int) -> list[str]:
    beside_python = Path(sys.executable).with_name("moto_server")
    executable = str(beside_python) if beside_python.exists() else shutil.which("moto_server")
    if not executable:
        raise BenchmarkError("start the local S3 endpoint: moto_server not found (moto[server])")
    return [executable, "-H", "127.0.0.1", "-p", str(port)]


class LocalS3:
    """`with LocalS3(log_path) as s3:` — a running endpoint with `bucket` created."""

    def __init__(self, log_path: Path, bucket: str = "drawing-analysis-backups-bench") -> None:
        self.log_path = log_path
        self.bucket = bucket
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None
        self.cpu_s: float | None = None

    def __enter__(self) -> LocalS3:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                moto_server_command(self.port),
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **CREDENTIALS},
            )
        self._wait_until_serving()
        self.client().create_bucket(Bucket=self.bucket)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop the server and keep the CPU seconds it burned (user + system)."""
        if self._process is None or self._process.returncode is not None:
            return
        self._process.send_signal(signal.SIGINT)
        try:
            _, _, usage = os.wait4(self._process.pid, 0)
        except ChildProcessError:
            return
        self._process.returncode = 0
        self.cpu_s = usage.ru_utime + usage.ru_stime

    def client(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )

    def env(self) -> dict[str, str]:
        """Environment for a contender's process: this endpoint, fake keys, no user config."""
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith("AWS_") and key not in ("HTTP_PROXY", "HTTPS_PROXY")
        }
        env.update(CREDENTIALS)
        env.update(
            AWS_DEFAULT_REGION=REGION,
            AWS_ENDPOINT_URL=self.endpoint,
            AWS_CONFIG_FILE=os.devnull,
            AWS_SHARED_CREDENTIALS_FILE=os.devnull,
            NO_PROXY="127.0.0.1,localhost",
        )
        return env

    def delete_prefix(self, prefix: str) -> None:
        """Free moto's memory: it holds every object in RAM."""
        s3 = self.client()
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if keys:
                s3.delete_objects(Bucket=self.bucket, Delete={"Objects": keys})

    def _wait_until_serving(self) -> None:
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise BenchmarkError(
                    f"start the local S3 endpoint: moto_server exited "
                    f"{self._process.returncode} (see {self.log_path})"
                )
            try:
                with urllib.request.urlopen(f"{self.endpoint}/moto-api/", timeout=1):
                    return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.1)
        self.stop()
        raise BenchmarkError(f"start the local S3 endpoint: no answer on {self.endpoint}")

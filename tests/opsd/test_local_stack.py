"""The README's main command, end to end: the whole system up locally, then stopped."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.task_processes import free_port

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent
FIRST_RUNS = ("backup", "verify-backup", "lifecycle-check", "budget-poll", "publish-metrics")


def wait_for(check, timeout_s: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


def test_opsd_run_brings_up_everything_and_stops_cleanly(tmp_path: Path) -> None:
    app_port, aws_port = free_port(), free_port()
    env = {
        **os.environ,
        "DATABASE_PATH": str(tmp_path / "data" / "app.db"),
        "OPS_STATE_PATH": str(tmp_path / "data" / "ops-state.db"),
        "LOG_FORMAT": "json",
        "PYTHONUNBUFFERED": "1",
    }
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        env.pop(name, None)
    log_path = tmp_path / "opsd.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [str(BIN / "opsd"), "run", "--app-port", str(app_port), "--aws-port", str(aws_port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
        )
    try:

        def status() -> dict | None:
            out = subprocess.run(
                [str(BIN / "opsd"), "status", "--json"],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            rows = {row["task"]: row for row in json.loads(out)["tasks"]}
            return rows if all(rows[name]["status"] for name in FIRST_RUNS) else None

        rows = wait_for(status, 120, "the first run of every task")
        assert rows["backup"]["status"] == "ok", rows["backup"]
        assert rows["verify-backup"]["status"] == "ok", rows["verify-backup"]
        assert rows["publish-metrics"]["status"] == "ok", rows["publish-metrics"]

        with urllib.request.urlopen(f"http://127.0.0.1:{app_port}/health", timeout=5) as reply:
            assert reply.status == 200

        aws_env = {
            **env,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_CA_BUNDLE": str(tmp_path / "data" / "local-aws" / "local-aws-cert.pem"),
        }
        endpoint = f"https://127.0.0.1:{aws_port}"
        listing = subprocess.run(
            [
                str(BIN / "aws"),
                "--endpoint-url",
                endpoint,
                "s3",
                "ls",
                "s3://drawing-analysis-backups-local/",
            ],
            env=aws_env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        key = next(word for word in listing.split() if word.startswith("backup-"))

        # The README's manual recovery, as written: a plain copy is a working database.
        restored = tmp_path / "restored.db"
        subprocess.run(
            [
                str(BIN / "aws"),
                "--endpoint-url",
                endpoint,
                "s3",
                "cp",
                f"s3://drawing-analysis-backups-local/{key}",
                str(restored),
            ],
            env=aws_env,
            capture_output=True,
            text=True,
            check=True,
        )
        check = subprocess.run(
            ["sqlite3", str(restored), "PRAGMA integrity_check"],
            capture_output=True,
            text=True,
            check=True,
        )
        assert check.stdout.strip() == "ok"

        # The runbook by hand, in a second terminal: no endpoint in the environment; the
        # tasks find the running endpoint through the shared ops state.
        def by_hand(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [sys.executable, "-m", "tasks", *args],
                env=env,
                capture_output=True,
                text=True,
                cwd=tmp_path,
            )

        to_new = by_hand("restore", "--latest", "--to", str(tmp_path / "copy.db"))
        assert to_new.returncode == 0, to_new.stderr
        in_place = by_hand("restore", "--latest", "--yes")
        assert in_place.returncode == 0, in_place.stderr
        assert list((tmp_path / "data").glob("app.db.pre-restore-*"))
        drill = by_hand("verify-backup")
        assert drill.returncode == 0, drill.stderr
        with urllib.request.urlopen(f"http://127.0.0.1:{app_port}/health", timeout=5) as reply:
            assert reply.status == 200  # the app went on with the restored file

        now = datetime.now(UTC)
        query = [
            {
                "Id": "tasks",
                "MetricStat": {
                    "Metric": {
                        "Namespace": "DrawingAnalysis",
                        "MetricName": "TaskSucceeded",
                        "Dimensions": [
                            {"Name": "Environment", "Value": "local"},
                            {"Name": "Task", "Value": "backup"},
                        ],
                    },
                    "Period": 60,
                    "Stat": "Sum",
                },
            }
        ]
        data = subprocess.run(
            [
                str(BIN / "aws"),
                "--endpoint-url",
                endpoint,
                "--region",
                "us-east-1",
                "cloudwatch",
                "get-metric-data",
                "--metric-data-queries",
                json.dumps(query),
                "--start-time",
                (now - timedelta(hours=1)).isoformat(),
                "--end-time",
                (now + timedelta(minutes=5)).isoformat(),
            ],
            env=aws_env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert sum(json.loads(data)["MetricDataResults"][0]["Values"]) >= 1
    finally:
        process.send_signal(signal.SIGINT)
        try:
            code = process.wait(timeout=45)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    assert code == 0, log_path.read_text()[-3000:]

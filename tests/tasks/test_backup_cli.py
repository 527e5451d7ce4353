"""End to end through `python -m tasks …` against moto's server on loopback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from opsd.clock import utcnow
from tests.conftest import create_app_database
from tests.frozen_clock import frozen_clock
from tests.task_processes import moto_endpoint, task_env
from tests.tasks.backup_helpers import add_bulk

pytestmark = pytest.mark.slow
BUCKET = "e2e-backups"
ROOT = Path(__file__).resolve().parents[2]

# Loaded into the child process through PYTHONPATH: every UploadPart waits a second, so that
# a SIGTERM surely lands in the middle of the upload.
SLOW_UPLOADS = """
import time
import urllib.request
import botocore.client

_make_api_call = botocore.client.BaseClient._make_api_call

def _slow(self, operation_name, params):
    if operation_name == "UploadPart":
        time.sleep(1.0)
    return _make_api_call(self, operation_name, params)

botocore.client.BaseClient._make_api_call = _slow
"""


@pytest.fixture
def endpoint() -> Iterator[str]:
    with moto_endpoint(BUCKET) as url:
        yield url


@pytest.fixture
def s3(endpoint: str) -> Any:
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")


@pytest.fixture
def cli_env(endpoint: str, tmp_path: Path) -> dict[str, str]:
    return task_env(endpoint, tmp_path, S3_BUCKET_BACKUPS=BUCKET)


def tasks_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tasks", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_backup_list_drill_and_restore_through_the_cli(
    cli_env: dict[str, str], s3: Any, tmp_path: Path
) -> None:
    cli_env = frozen_clock(cli_env, tmp_path / "hooks", utcnow())  # both backups: one minute
    db = create_app_database(Path(cli_env["DATABASE_PATH"]), analyses=500)

    backup = tasks_cli(cli_env, "backup", "--reason", "manual")
    assert backup.returncode == 0, backup.stderr + backup.stdout
    listed = tasks_cli(cli_env, "restore", "--list", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert len(rows) == 1 and rows[0]["reason"] == "manual"
    key = rows[0]["key"]

    drill = tasks_cli(cli_env, "verify-backup")
    assert drill.returncode == 0, drill.stderr + drill.stdout
    assert (
        json.loads(tasks_cli(cli_env, "restore", "--list", "--json").stdout)[0]["drill"] == "passed"
    )

    again = tasks_cli(cli_env, "backup")
    assert again.returncode == 0 and f"{key} already exists" in again.stdout
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]] == [key]

    target = tmp_path / "restored.db"
    restored = tasks_cli(cli_env, "restore", "--to", str(target), "--latest")
    assert restored.returncode == 0, restored.stderr + restored.stdout
    assert target.stat().st_size > 0
    assert os.listdir(cli_env["SCRATCH_DIR"]) == []

    in_place = tasks_cli(cli_env, "restore")
    assert in_place.returncode == 2
    assert in_place.stderr.strip().splitlines()[-1].startswith("restore: in place of")
    assert in_place.stderr.strip().count("\n") == 0
    assert db.exists()


def test_bad_input_ends_with_one_line_and_its_exit_code(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    missing = tasks_cli(cli_env, "backup")
    assert missing.returncode == 1
    assert missing.stderr.strip().splitlines()[-1].endswith("database file not found")

    create_app_database(Path(cli_env["DATABASE_PATH"]))
    assert tasks_cli(cli_env, "backup").returncode == 0
    early = tasks_cli(
        cli_env, "restore", "--at", "2000-01-01 00:00", "--to", str(tmp_path / "x.db")
    )
    assert early.returncode == 1
    assert "no backup at or before 2000-01-01 00:00 UTC; the earliest is backup-" in early.stderr
    assert early.stderr.startswith("restore failed: no backup")  # not "restore: restore: …"

    no_bucket = tasks_cli({**cli_env, "S3_BUCKET_BACKUPS": "no-such-bucket"}, "verify-backup")
    assert no_bucket.returncode == 1 and "NoSuchBucket" in no_bucket.stderr


def test_sigterm_mid_backup_leaves_no_object_no_upload_and_no_temp_file(
    cli_env: dict[str, str], s3: Any, tmp_path: Path
) -> None:
    add_bulk(create_app_database(Path(cli_env["DATABASE_PATH"])), 12)
    hook_dir = tmp_path / "hooks"
    hook_dir.mkdir()
    (hook_dir / "sitecustomize.py").write_text(SLOW_UPLOADS)
    env = {
        **cli_env,
        "PYTHONPATH": f"{hook_dir}{os.pathsep}{ROOT}",
        "BACKUP_PART_SIZE_MB": "5",
        "BACKUP_UPLOAD_CONCURRENCY": "1",
    }
    child = subprocess.Popen(
        [sys.executable, "-m", "tasks", "backup"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads"):
        assert child.poll() is None, child.communicate()
        assert time.monotonic() < deadline, "the upload never started"
        time.sleep(0.05)
    child.send_signal(signal.SIGTERM)
    stdout, stderr = child.communicate(timeout=60)

    assert child.returncode == 1, stdout + stderr
    assert stderr.strip().splitlines()[-1] == "backup failed: interrupted by SIGTERM"
    assert s3.list_objects_v2(Bucket=BUCKET).get("Contents", []) == []
    assert s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []
    assert os.listdir(cli_env["SCRATCH_DIR"]) == []

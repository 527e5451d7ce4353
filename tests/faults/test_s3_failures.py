"""S3 failing under `python -m tasks backup` and `restore`: 500, 503 SlowDown, connection
resets, a download cut halfway, injected by a proxy between the task and moto's server.

Within botocore's standard retry policy (5 attempts per call) the task succeeds; beyond it
the task fails cleanly: exit 1 with one line, no object, no open multipart upload, no temp
file, and a restore leaves the live database exactly as it was.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from opsd.aws import RETRIES
from tests.conftest import create_app_database
from tests.faults.fault_proxy import Fault, FaultProxy
from tests.faults.figures import record_figure
from tests.task_processes import (
    BUCKET,
    drill_every_backup,
    last_line,
    moto_endpoint,
    run_tasks_cli,
    s3_client,
    scratch_leftovers,
    settings_for,
    sha256_of,
    task_env,
)
from tests.tasks.backup_helpers import add_bulk

pytestmark = [pytest.mark.faults, pytest.mark.slow]
# botocore's `max_attempts` counts the retries: a call makes one attempt more.
ATTEMPTS = 1 + int(RETRIES["max_attempts"])
FOREVER = 1000


@dataclass
class Stack:
    endpoint: str
    proxy: FaultProxy
    env: dict[str, str]
    database: Path

    @property
    def scratch(self) -> Path:
        return Path(self.env["SCRATCH_DIR"])

    def s3(self) -> object:
        return s3_client(self.endpoint)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    with moto_endpoint(BUCKET) as endpoint, FaultProxy(endpoint) as proxy:
        env = task_env(proxy.url, tmp_path, BACKUP_PART_SIZE_MB="5", BACKUP_UPLOAD_CONCURRENCY="2")
        database = add_bulk(create_app_database(Path(env["DATABASE_PATH"]), analyses=500), 7)
        yield Stack(endpoint, proxy, env, database)


@pytest.fixture
def injected(request: pytest.FixtureRequest) -> Iterator[list[int]]:
    counts: list[int] = []
    yield counts
    record_figure(
        request.config, "faults", f"{request.node.name}: {sum(counts)} S3 faults injected"
    )


def open_uploads(stack: Stack) -> list[object]:
    return stack.s3().list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])  # type: ignore[attr-defined]


def backup_keys(stack: Stack) -> list[str]:
    listing = stack.s3().list_objects_v2(Bucket=BUCKET).get("Contents", [])  # type: ignore[attr-defined]
    return [item["Key"] for item in listing]


def test_backup_rides_out_transient_failures_within_the_retry_policy(
    stack: Stack, injected: list[int]
) -> None:
    stack.proxy.plan.replace(
        Fault("HeadObject", "503", 1),
        Fault("CreateMultipartUpload", "reset", 1),
        Fault("UploadPart", "503", ATTEMPTS - 1),
        Fault("UploadPart", "reset", 1, skip=ATTEMPTS - 1),
        Fault("CompleteMultipartUpload", "500", ATTEMPTS - 1),
    )
    done = run_tasks_cli(stack.env, "backup")
    injected.append(stack.proxy.plan.total_injected)

    assert done.returncode == 0, last_line(done.stderr + done.stdout)
    assert stack.proxy.plan.total_injected == 3 + 2 * (ATTEMPTS - 1)
    assert len(drill_every_backup(settings_for(stack.endpoint))) == 1
    assert open_uploads(stack) == []
    assert scratch_leftovers(stack.scratch) == []


@pytest.mark.parametrize(
    ("operation", "kind", "action"),
    [("UploadPart", "503", "upload"), ("CompleteMultipartUpload", "reset", "complete upload of")],
)
def test_backup_fails_cleanly_once_retries_are_exhausted(
    stack: Stack, injected: list[int], operation: str, kind: str, action: str
) -> None:
    live = sha256_of(stack.database)
    stack.proxy.plan.replace(Fault(operation, kind, FOREVER))
    done = run_tasks_cli(stack.env, "backup")
    injected.append(stack.proxy.plan.total_injected)

    assert done.returncode == 1, done.stdout
    line = last_line(done.stderr)
    assert line.startswith(f"backup failed: {action} backup-"), line
    assert ("SlowDown" if kind == "503" else "Connection") in line, line
    # Every call gave up after exactly the policy's attempts (parts go up two at a time).
    assert stack.proxy.plan.requests[operation] % ATTEMPTS == 0
    assert backup_keys(stack) == []
    assert open_uploads(stack) == [], "the multipart upload was not aborted"
    assert scratch_leftovers(stack.scratch) == []
    assert sha256_of(stack.database) == live


@pytest.fixture
def backed_up(stack: Stack) -> Stack:
    """One verified backup, then a live database that has moved on since."""
    made = run_tasks_cli(stack.env, "backup")
    assert made.returncode == 0, last_line(made.stderr + made.stdout)
    create_app_database(stack.database.with_name("newer.db"), analyses=50, seed=3)
    os.replace(stack.database.with_name("newer.db"), stack.database)
    return stack


def data_dir_files(stack: Stack) -> list[str]:
    return sorted(p.name for p in stack.database.parent.iterdir())


def test_restore_rides_out_transient_download_failures(
    backed_up: Stack, injected: list[int]
) -> None:
    stack = backed_up
    (key,) = backup_keys(stack)
    expected = stack.s3().head_object(Bucket=BUCKET, Key=key)["Metadata"]["sha256"]  # type: ignore[attr-defined]
    stack.proxy.plan.replace(
        Fault("ListObjectsV2", "500", 1),
        Fault("GetObject", "503", 2),
        Fault("GetObject", "reset", 1, skip=2),
    )
    done = run_tasks_cli(stack.env, "restore", "--latest", "--yes")
    injected.append(stack.proxy.plan.total_injected)

    assert done.returncode == 0, last_line(done.stderr + done.stdout)
    assert stack.proxy.plan.total_injected == 4
    assert sha256_of(stack.database) == expected
    names = data_dir_files(stack)
    assert not [n for n in names if n.endswith(".tmp")], names
    assert any(".pre-restore-" in n for n in names), names


@pytest.mark.parametrize(
    ("kind", "why"), [("reset-mid-body", "download"), ("500", "InternalError")]
)
def test_a_failed_download_never_touches_the_live_database(
    backed_up: Stack, injected: list[int], kind: str, why: str
) -> None:
    stack = backed_up
    live = sha256_of(stack.database)
    before = data_dir_files(stack)
    stack.proxy.plan.replace(Fault("GetObject", kind, FOREVER))
    done = run_tasks_cli(stack.env, "restore", "--latest", "--yes")
    injected.append(stack.proxy.plan.total_injected)

    assert done.returncode == 1, done.stdout
    line = last_line(done.stderr)
    assert line.startswith("restore failed: download ") and why in line, line
    assert sha256_of(stack.database) == live
    assert data_dir_files(stack) == before  # no temp file, no pre-restore copy

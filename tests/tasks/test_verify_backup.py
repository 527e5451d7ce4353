from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from opsd.results import Status
from opsd.settings import Settings
from tests.tasks.backup_helpers import corrupt_middle_page, run_task, scratch_files


@pytest.fixture
def backed_up(make_ctx: Any, app_db: Path) -> str:
    result = run_task(make_ctx("backup"))
    assert result.status is Status.OK, result.message
    return str(result.details["key"])


def _replace_object(
    s3: Any, bucket: str, key: str, body: bytes | None = None, **metadata: str
) -> None:
    """Rewrite a backup object, keeping its metadata except for the fields given."""
    head = s3.head_object(Bucket=bucket, Key=key)
    data = s3.get_object(Bucket=bucket, Key=key)["Body"].read() if body is None else body
    s3.put_object(Bucket=bucket, Key=key, Body=data, Metadata={**head["Metadata"], **metadata})


def _metric_sum(ctx: Any, name: str) -> float:
    stats = ctx.clients("cloudwatch").get_metric_statistics(
        Namespace=ctx.settings.metrics_namespace,
        MetricName=name,
        Dimensions=[{"Name": "Environment", "Value": ctx.settings.environment}],
        StartTime="2000-01-01T00:00:00Z",
        EndTime="2100-01-01T00:00:00Z",
        Period=60,
        Statistics=["Sum"],
    )
    return sum(point["Sum"] for point in stats["Datapoints"])


def test_drill_of_a_good_backup_passes_and_is_recorded(
    make_ctx: Any, backed_up: str, settings: Settings
) -> None:
    ctx = make_ctx("verify-backup")
    result = run_task(ctx)
    assert result.status is Status.OK, result.message
    assert result.details["key"] == backed_up
    assert "restores exactly" in result.message and "401 rows in 5 tables" in result.message
    drill = ctx.state.latest_drills()[backed_up]
    assert drill.passed and drill.run_id == ctx.run_id
    assert _metric_sum(ctx, "RestoreDrillSucceeded") == 1
    assert _metric_sum(ctx, "RestoreDrillFailed") == 0
    assert scratch_files(settings.scratch_dir) == []


def test_second_drill_of_the_same_backup_re_verifies_and_says_so(
    make_ctx: Any, backed_up: str
) -> None:
    assert run_task(make_ctx("verify-backup")).status is Status.OK
    again = run_task(make_ctx("verify-backup"))
    assert again.status is Status.OK
    assert "re-verified; drill at" in again.message and "passed" in again.message


def test_bytes_that_do_not_match_their_sha256_fail_the_drill(
    make_ctx: Any, backed_up: str, settings: Settings
) -> None:
    ctx = make_ctx("verify-backup")
    s3 = ctx.clients("s3")
    data = bytearray(s3.get_object(Bucket=settings.s3_bucket_backups, Key=backed_up)["Body"].read())
    data[5000] ^= 0xFF
    _replace_object(s3, settings.s3_bucket_backups, backed_up, bytes(data))
    result = run_task(ctx)
    assert result.status is Status.VIOLATION and result.exit_code == 3
    assert "sha256" in result.message and "\n" not in result.message
    assert not ctx.state.latest_drills()[backed_up].passed
    assert _metric_sum(ctx, "RestoreDrillFailed") == 1
    assert scratch_files(settings.scratch_dir) == []


def test_corrupt_database_with_a_matching_sha256_fails_integrity(
    make_ctx: Any, backed_up: str, settings: Settings, tmp_path: Path
) -> None:
    ctx = make_ctx("verify-backup")
    s3 = ctx.clients("s3")
    copy = tmp_path / "copy.db"
    copy.write_bytes(s3.get_object(Bucket=settings.s3_bucket_backups, Key=backed_up)["Body"].read())
    corrupt_middle_page(copy)
    data = copy.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    _replace_object(s3, settings.s3_bucket_backups, backed_up, data, sha256=sha)
    result = run_task(ctx)
    assert result.exit_code == 3
    assert "integrity check failed" in result.message


def test_row_counts_that_differ_from_the_metadata_fail_the_drill(
    make_ctx: Any, backed_up: str, settings: Settings
) -> None:
    ctx = make_ctx("verify-backup")
    counts = json.dumps(
        {
            "admin_sessions": 0,
            "alembic_version": 1,
            "analyses": 250,
            "app_config": 0,
            "drawings": 200,
        }
    )
    _replace_object(
        ctx.clients("s3"), settings.s3_bucket_backups, backed_up, **{"row-counts": counts}
    )
    result = run_task(ctx)
    assert result.exit_code == 3
    assert "row counts differ: analyses 200 != 250" in result.message


def test_backup_without_its_metadata_fails_the_drill(
    make_ctx: Any, backed_up: str, settings: Settings
) -> None:
    ctx = make_ctx("verify-backup")
    s3 = ctx.clients("s3")
    data = s3.get_object(Bucket=settings.s3_bucket_backups, Key=backed_up)["Body"].read()
    s3.put_object(Bucket=settings.s3_bucket_backups, Key=backed_up, Body=data)
    result = run_task(ctx)
    assert result.exit_code == 3
    assert "no backup metadata" in result.message
    named = run_task(make_ctx("verify-backup"), key=backed_up)
    assert named.exit_code == 3 and "fails its restore drill: no backup metadata" in named.message


def test_drill_of_a_named_key(make_ctx: Any, backed_up: str) -> None:
    result = run_task(make_ctx("verify-backup"), key=backed_up)
    assert result.status is Status.OK
    missing = run_task(make_ctx("verify-backup"), key="backup-2000-01-01-00-00.db")
    assert missing.exit_code == 1 and "no such object" in missing.message


def test_drill_without_any_backup_fails_with_one_line(make_ctx: Any, settings: Settings) -> None:
    result = run_task(make_ctx("verify-backup"))
    assert result.exit_code == 1
    assert result.message == f"drill: no backups in s3://{settings.s3_bucket_backups}/"

"""`python -m tasks verify-backup`: the restore drill, proving a backup restores exactly."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from opsd.metrics import Datum
from opsd.results import Status, TaskError, TaskResult
from opsd.runner import TaskContext
from tasks.backup_checks import check_download
from tasks.backup_objects import BackupMetadata, head_backup, list_backups, normalise_prefix
from tasks.download import download_object
from tasks.drill_records import latest_drills, record_drill
from tasks.scratch_files import remove_quietly

TASK = "verify-backup"
DESCRIPTION = (
    "Restore drill: download the newest backup (or --key) to scratch and prove it restores: "
    "sha256, integrity_check, schema version, per-table row counts, opened as the app does. "
    "Exit 3 when the backup fails its drill."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--key", help="drill this backup object instead of the newest")


def run(ctx: TaskContext, args: argparse.Namespace) -> TaskResult:
    settings = ctx.settings
    bucket = settings.s3_bucket_backups
    s3 = ctx.clients("s3")
    key = args.key or _newest_key(s3, bucket, settings.backup_prefix)
    head = head_backup(s3, bucket, key)
    if head is None:
        raise TaskError(f"drill {key}: no such object in s3://{bucket}")
    previous = latest_drills(ctx.state).get(key)
    details = {"bucket": bucket, "key": key, "bytes": head.get("ContentLength")}

    try:
        metadata = BackupMetadata.from_s3(key, head.get("Metadata", {}))
    except TaskError as exc:
        metadata, problems = None, [str(exc).removeprefix(f"{key}: ")]
    else:
        try:
            problems = _drill(ctx, bucket, key, metadata)
        except TaskError as exc:
            _conclude(ctx, key, passed=False, message=str(exc))
            raise
    passed = not problems
    if passed and metadata is not None:
        message = (
            f"{key} restores exactly: sha256, integrity, schema "
            f"{metadata.alembic_revision or metadata.user_version}, "
            f"{sum(metadata.row_counts.values())} rows in {len(metadata.row_counts)} tables"
        )
    else:
        message = f"{key} fails its restore drill: {'; '.join(problems)}"
    if previous is not None:
        message += f" (re-verified; drill at {previous.drilled_at} {previous.verdict})"
    _conclude(ctx, key, passed=passed, message=message)
    status = Status.OK if passed else Status.VIOLATION
    return TaskResult(TASK, status, message, {**details, "problems": problems})


def _newest_key(s3: Any, bucket: str, prefix: str) -> str:
    backups = list_backups(s3, bucket, prefix)
    if not backups:
        raise TaskError(f"drill: no backups in s3://{bucket}/{normalise_prefix(prefix)}")
    return backups[0].key


def _drill(ctx: TaskContext, bucket: str, key: str, metadata: BackupMetadata) -> list[str]:
    directory = ctx.settings.scratch_dir or Path(tempfile.gettempdir())
    directory.mkdir(parents=True, exist_ok=True)
    # A scratch copy read once and removed: it never needs to reach the disk.
    path = download_object(
        ctx.clients("s3"), bucket, key, directory, check_stop=ctx.check_stop, durable=False
    )
    try:
        return check_download(path, metadata, full=True)
    finally:
        remove_quietly(path)


def _conclude(ctx: TaskContext, key: str, *, passed: bool, message: str) -> None:
    record_drill(ctx.state, key, ctx.run_id, passed, message)
    try:
        ctx.metrics.publish(
            [
                Datum("RestoreDrillSucceeded", 1 if passed else 0),
                Datum("RestoreDrillFailed", 0 if passed else 1),
            ]
        )
    except Exception as exc:
        ctx.log.warning("drill metrics not published", error=str(exc))

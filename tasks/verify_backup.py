"""`python -m tasks verify-backup`: the restore drill, proving a backup restores exactly."""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from opsd.metrics import Datum
from opsd.results import Status, TaskError, TaskResult
from opsd.runner import TaskContext
from opsd.state import utcnow
from tasks.app_database import refuse_unless_sqlite
from tasks.backup_checks import check_download
from tasks.backup_objects import (
    BackupMetadata,
    BackupObject,
    head_backup,
    key_time,
    list_backups,
    normalise_prefix,
)
from tasks.backup_trust import CheckedBackup, check_backup, describe_suspects, newest_trusted
from tasks.download import ScratchWriteError, download_object
from tasks.journal_mode import ensure_rollback_journal
from tasks.scratch_files import remove_quietly

TASK = "verify-backup"
DESCRIPTION = (
    "Restore drill: download the newest backup (or --key) to scratch and prove it restores: "
    "sha256, integrity_check, schema version, per-table row counts, opened as the app does. "
    "Exit 3 when the backup fails its drill."
)


NAMED_LIKE = "backup-YYYY-MM-DD-HH-MM.db"


class NothingToTrust(TaskError):
    """Every backup object is suspect: no backup could be restored by --latest."""

    status = Status.VIOLATION


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--key", help="drill this backup object instead of the newest")


def run(ctx: TaskContext, args: argparse.Namespace) -> TaskResult:
    refuse_unless_sqlite(ctx.settings, "verify-backup")
    settings = ctx.settings
    bucket = settings.s3_bucket_backups
    s3 = ctx.clients("s3")
    try:
        chosen, passed_over = _choose(s3, bucket, settings.backup_prefix, args.key)
    except NothingToTrust:
        _publish_verdict(ctx, passed=False)
        raise
    key = chosen.key
    previous = ctx.state.latest_drills().get(key)
    details: dict[str, Any] = {"bucket": bucket, "key": key, "bytes": chosen.backup.size}
    problems = [chosen.suspect] if chosen.suspect else []
    if chosen.metadata is not None:
        try:
            problems += _drill(ctx, bucket, key, chosen.metadata)
        except ScratchWriteError as exc:
            ctx.state.record_drill(key, ctx.run_id, None, f"not run: {exc}", utcnow())
            raise TaskError(f"drill not run: {exc}") from None
        except TaskError as exc:
            _conclude(ctx, key, passed=False, message=str(exc))
            raise
    passed = not problems
    metadata = chosen.metadata
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
    if passed_over:
        # The drilled backup is sound; the objects newer than it are not ours to trust.
        message += f"; newer objects passed over as suspect: {describe_suspects(passed_over)}"
        details["suspect"] = [s.key for s in passed_over]
        status = Status.VIOLATION
    return TaskResult(TASK, status, message, {**details, "problems": problems})


def _choose(
    s3: Any, bucket: str, prefix: str, key: str | None
) -> tuple[CheckedBackup, list[CheckedBackup]]:
    """--key as named (a suspect one fails its drill); otherwise the backup `restore
    --latest` would restore, with the suspect objects newer than it."""
    now = utcnow()
    if key is not None:
        head = head_backup(s3, bucket, key)
        if head is None:
            raise TaskError(f"drill {key}: no such object in s3://{bucket}")
        named = BackupObject(
            key,
            key_time(key) or now,
            int(head.get("ContentLength", 0)),
            last_modified=head.get("LastModified"),
        )
        checked = check_backup(s3, bucket, named, now, head=head)
        if key_time(key) is None:
            return replace(
                checked, suspect="not named like a backup (backup-YYYY-MM-DD-HH-MM.db)"
            ), []
        return checked, []
    backups = list_backups(s3, bucket, prefix)
    if not backups:
        raise TaskError(f"drill: no backups in s3://{bucket}/{normalise_prefix(prefix)}")
    chosen, passed_over = newest_trusted(s3, bucket, backups, now)
    if chosen is None:
        raise NothingToTrust(
            f"drill: no backup to trust in s3://{bucket}/{normalise_prefix(prefix)}; "
            f"suspect: {describe_suspects(passed_over)}"
        )
    return chosen, passed_over


def _drill(ctx: TaskContext, bucket: str, key: str, metadata: BackupMetadata) -> list[str]:
    directory = ctx.settings.scratch_dir or Path(tempfile.gettempdir())
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ScratchWriteError(f"scratch directory {directory}: {exc.strerror or exc}") from None
    # A scratch copy read once and removed: it never needs to reach the disk.
    path = download_object(
        ctx.clients("s3"), bucket, key, directory, check_stop=ctx.check_stop, durable=False
    )
    try:
        problems = check_download(path, metadata, full=True)
        if not problems:
            ensure_rollback_journal(path)  # as a restore does with a WAL-mode backup
        return problems
    finally:
        remove_quietly(path)


def _conclude(ctx: TaskContext, key: str, *, passed: bool, message: str) -> None:
    ctx.state.record_drill(key, ctx.run_id, passed, message, utcnow())
    _publish_verdict(ctx, passed=passed)


def _publish_verdict(ctx: TaskContext, *, passed: bool) -> None:
    try:
        ctx.metrics.publish(
            [
                Datum("RestoreDrillSucceeded", 1 if passed else 0),
                Datum("RestoreDrillFailed", 0 if passed else 1),
            ]
        )
    except Exception as exc:
        ctx.log.warning("drill metrics not published", error=str(exc))

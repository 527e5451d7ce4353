"""`python -m tasks verify-backup`: the restore drill, proving a backup restores exactly."""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from opsd.metrics import Datum
from opsd.results import Status, TaskError, TaskResult
from opsd.runner import TaskContext
from tasks.backups.checks import check_download
from tasks.backups.download import ScratchWriteError
from tasks.backups.journal_mode import ensure_rollback_journal
from tasks.backups.objects import BackupMetadata
from tasks.backups.scratch_files import remove_quietly
from tasks.backups.sqlite_only import refuse_unless_sqlite
from tasks.backups.store import NAMED_LIKE, BackupObject, BackupStore, key_time
from tasks.backups.trust import CheckedBackup, describe_suspects

DESCRIPTION = (
    "Restore drill: download the newest backup (or --key) to scratch and prove it restores: "
    "sha256, integrity_check, schema version, per-table row counts, opened as the app does. "
    "Exit 3 when the backup fails its drill."
)


class NothingToTrust(TaskError):
    """Every backup object is suspect: no backup could be restored by --latest."""

    status = Status.VIOLATION


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--key", help="drill this backup object instead of the newest")


def run(ctx: TaskContext, args: argparse.Namespace) -> TaskResult:
    refuse_unless_sqlite(ctx.settings, "verify-backup")
    store = BackupStore.for_settings(ctx.settings, ctx.clients("s3"))
    try:
        chosen, passed_over = _choose(store, args.key, ctx.clock())
    except NothingToTrust:
        _publish_verdict(ctx, passed=False)
        raise
    key = chosen.key
    previous = ctx.state.latest_drills().get(key)
    details: dict[str, Any] = {"bucket": store.bucket, "key": key, "bytes": chosen.backup.size}
    problems = [chosen.suspect] if chosen.suspect else []
    if chosen.metadata is not None:
        try:
            problems += _drill(ctx, store, key, chosen.metadata)
        except ScratchWriteError as exc:
            ctx.state.record_drill(key, ctx.run_id, None, f"not run: {exc}", ctx.clock())
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
    return TaskResult(ctx.task, status, message, {**details, "problems": problems})


def _choose(
    store: BackupStore, key: str | None, now: datetime
) -> tuple[CheckedBackup, list[CheckedBackup]]:
    """--key as named (a suspect one fails its drill); otherwise the backup `restore
    --latest` would restore, with the suspect objects newer than it."""
    if key is not None:
        head = store.head(key)
        if head is None:
            raise TaskError(f"drill {key}: no such object in s3://{store.bucket}")
        named = BackupObject(
            key,
            key_time(key) or now,
            int(head.get("ContentLength", 0)),
            last_modified=head.get("LastModified"),
        )
        checked = store.check(named, now, head=head)
        if key_time(key) is None:
            return replace(checked, suspect=f"not named like a backup ({NAMED_LIKE})"), []
        return checked, []
    backups = store.list()
    if not backups:
        raise TaskError(f"drill: no backups in {store.location}")
    chosen, passed_over = store.newest(now, among=backups)
    if chosen is None:
        raise NothingToTrust(
            f"drill: no backup to trust in {store.location}; "
            f"suspect: {describe_suspects(passed_over)}"
        )
    return chosen, passed_over


def _drill(ctx: TaskContext, store: BackupStore, key: str, metadata: BackupMetadata) -> list[str]:
    directory = ctx.settings.scratch_dir or Path(tempfile.gettempdir())
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ScratchWriteError(f"scratch directory {directory}: {exc.strerror or exc}") from None
    # A scratch copy read once and removed: it never needs to reach the disk.
    path = store.download(key, directory, check_stop=ctx.check_stop, durable=False)
    try:
        problems = check_download(path, metadata, full=True)
        if not problems:
            ensure_rollback_journal(path)  # as a restore does with a WAL-mode backup
        return problems
    finally:
        remove_quietly(path)


def _conclude(ctx: TaskContext, key: str, *, passed: bool, message: str) -> None:
    ctx.state.record_drill(key, ctx.run_id, passed, message, ctx.clock())
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

"""`python -m tasks backup`: consistent snapshot → integrity check → write-once upload → verify."""

from __future__ import annotations

import argparse
import socket
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from opsd.metrics import Datum
from opsd.results import Status, TaskError, TaskResult
from opsd.runner import TaskContext
from tasks.backups.checksums import CopyDigests, FileDigests
from tasks.backups.content import check_snapshot, check_source_file
from tasks.backups.objects import REASONS, BackupMetadata
from tasks.backups.scratch_files import remove_abandoned, remove_quietly
from tasks.backups.snapshot import (
    SNAPSHOT_PREFIX,
    BackgroundIntegrityCheck,
    DatabaseFacts,
    integrity_summary,
    read_database_facts,
    snapshot_database,
)
from tasks.backups.sqlite_only import refuse_unless_sqlite
from tasks.backups.store import BackupStore
from tasks.backups.upload import ObjectExists

DESCRIPTION = (
    "Take a consistent snapshot of the app database (DATABASE_PATH), check its integrity and "
    "upload it once to S3_BUCKET_BACKUPS as backup-YYYY-MM-DD-HH-MM.db, then verify it."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--reason",
        choices=REASONS,
        default="scheduled",
        help="why this backup is taken, recorded on the object (default: scheduled)",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="snapshot and check, show what would be uploaded, upload nothing",
    )
    parser.add_argument(
        "--allow-empty",
        action="store_true",
        help="back up a database that is empty or lacks the app's schema (refused otherwise)",
    )


def run(ctx: TaskContext, args: argparse.Namespace) -> TaskResult:
    refuse_unless_sqlite(ctx.settings, "backup")
    settings = ctx.settings
    began = time.monotonic()
    taken_at = ctx.clock()
    store = BackupStore.for_settings(settings, ctx.clients("s3"))
    bucket, key = store.bucket, store.key(taken_at)
    where = {"bucket": bucket, "key": key}
    _remove_abandoned_snapshots(ctx)
    if not args.dry_run and store.head(key) is not None:
        return TaskResult(
            ctx.task, Status.SKIPPED, f"{key} already exists: backup of this minute done", where
        )

    check_source_file(settings.database_path, allow_empty=args.allow_empty)
    snapshot: Path | None = None
    integrity: BackgroundIntegrityCheck | None = None
    try:
        hashing = CopyDigests(settings.backup_part_size_mb << 20)
        copy = snapshot = snapshot_database(
            settings.database_path, settings.scratch_dir, settings.sqlite_busy_timeout_ms, hashing
        )
        ctx.check_stop()
        # The writers are free again. One pass over the snapshot at a time: two at once
        # in the task's memory evict each other's pages (benchmarks/RESULTS.md, issue 15).
        digests = hashing.result(copy)
        ctx.log.info("snapshot taken", bytes=digests.size, sha256=digests.sha256, **where)
        facts = read_database_facts(
            copy,
            settings.sqlite_busy_timeout_ms,
            check_integrity=False,
            mapped=True,
            census=hashing.census,
        )
        if facts.integrity_errors:
            _refuse(settings.database_path, facts.integrity_errors)
        check_snapshot(settings.database_path, facts, allow_empty=args.allow_empty)
        # The integrity check runs while the parts go up (tasks.backups.upload); the
        # upload completes only if it passes.
        checked = integrity = BackgroundIntegrityCheck(copy, settings.sqlite_busy_timeout_ms)
        metadata = _metadata(facts, digests, args.reason, taken_at.isoformat(timespec="seconds"))
        encoded = metadata.to_s3()
        details: dict[str, Any] = {**where, "bytes": digests.size, "sha256": digests.sha256}

        def require_integrity() -> None:
            if errors := checked.errors():
                _refuse(settings.database_path, errors)

        def release_snapshot() -> None:
            require_integrity()
            # Every part is up: the copy goes while S3 assembles the object.
            remove_quietly(copy)

        if args.dry_run:
            require_integrity()
            return TaskResult(
                ctx.task,
                Status.OK,
                f"dry run: would upload {key} ({digests.size} bytes) to s3://{bucket}",
                details,
                output=_plan(bucket, key, digests, encoded),
            )
        ctx.check_stop()
        try:
            store.put_once(
                key,
                copy,
                digests,
                encoded,
                concurrency=settings.backup_upload_concurrency,
                check_stop=ctx.check_stop,
                before_complete=release_snapshot,
            )
        except ObjectExists:
            return TaskResult(
                ctx.task, Status.SKIPPED, f"{key} already exists: backup of this minute done", where
            )
        details[f"checksum_{digests.algorithm.lower()}"] = verify_uploaded(store, key, digests)
    finally:
        if integrity is not None:
            integrity.cancel()
        remove_quietly(snapshot)

    duration = time.monotonic() - began
    details["duration_s"] = round(duration, 3)
    _publish(ctx, digests.size, duration)
    return TaskResult(
        ctx.task,
        Status.OK,
        f"uploaded {key} ({digests.size} bytes, {digests.part_count} parts) to s3://{bucket}",
        details,
    )


def _remove_abandoned_snapshots(ctx: TaskContext) -> None:
    """Snapshots of runs killed (SIGKILL, out of memory) before they could clean up: only
    files that prove they are ours (see scratch_files), wherever the scratch directory is."""
    scratch = ctx.settings.scratch_dir or Path(tempfile.gettempdir())
    if scratch.is_dir():
        removed = remove_abandoned(scratch, SNAPSHOT_PREFIX)
        if removed:
            ctx.log.info("abandoned snapshots removed", files=[p.name for p in removed])


def _refuse(database: Path, errors: Sequence[str]) -> NoReturn:
    raise TaskError(
        f"integrity check of the snapshot of {database} failed, "
        f"nothing uploaded: {integrity_summary(errors)}"
    )


def _metadata(
    facts: DatabaseFacts, digests: FileDigests, reason: str, taken_at: str
) -> BackupMetadata:
    return BackupMetadata(
        sha256=digests.sha256,
        size=digests.size,
        page_count=facts.page_count,
        page_size=facts.page_size,
        sqlite_version=facts.sqlite_version,
        user_version=facts.user_version,
        alembic_revision=facts.alembic_revision,
        row_counts=facts.row_counts,
        reason=reason,
        host=socket.gethostname()[:64],
        taken_at=taken_at,
    )


def verify_uploaded(store: BackupStore, key: str, digests: FileDigests) -> str | None:
    """HEAD the new object: size, our sha256, S3's own checksum of the bytes it stored
    (against the one computed from the snapshot) and encryption."""
    head = store.head(key)
    if head is None:
        raise TaskError(f"verify {key}: object not found after upload")
    problems = []
    if head.get("ContentLength") != digests.size:
        problems.append(f"size {head.get('ContentLength')} != {digests.size}")
    if head.get("Metadata", {}).get("sha256") != digests.sha256:
        problems.append("sha256 metadata differs")
    remote = head.get(f"Checksum{digests.algorithm}")
    if remote is None:
        problems.append(f"S3 reports no {digests.algorithm} checksum")
    elif not same_composite(remote, digests.object_checksum()):
        problems.append(f"S3 checksum {remote} != {digests.object_checksum()}")
    if head.get("ServerSideEncryption") != "AES256":
        problems.append(f"encryption {head.get('ServerSideEncryption')} != AES256")
    if problems:
        raise TaskError(f"verify {key}: {'; '.join(problems)}")
    return remote  # type: ignore[no-any-return]


def same_composite(remote: str, ours: str) -> bool:
    """S3 writes a COMPOSITE checksum as 'digest-N'; some endpoints (moto) leave out '-N'."""
    remote_digest, _, remote_parts = remote.partition("-")
    our_digest, _, our_parts = ours.partition("-")
    return remote_digest == our_digest and remote_parts in ("", our_parts)


def _plan(bucket: str, key: str, digests: FileDigests, metadata: dict[str, str]) -> str:
    lines = [
        f"would upload s3://{bucket}/{key}",
        f"  bytes        {digests.size} in {digests.part_count} part(s) of {digests.part_size}",
        f"  encryption   AES256, {digests.algorithm} checksum per part and of the object "
        f"({digests.checksum_type}), written once (If-None-Match: *)",
        *(f"  {name:<16} {value}" for name, value in metadata.items()),
    ]
    return "\n".join(lines)


def _publish(ctx: TaskContext, size: int, duration: float) -> None:
    try:
        ctx.metrics.publish(
            [Datum("BackupSizeBytes", size), Datum("BackupDurationSeconds", duration)]
        )
    except Exception as exc:
        ctx.log.warning("backup metrics not published", error=str(exc))

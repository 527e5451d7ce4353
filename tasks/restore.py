"""`python -m tasks restore`: list backups; restore one safely, in place or to a new file."""

from __future__ import annotations

import argparse
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opsd.formatting import human_size
from opsd.results import Status, TaskError, TaskResult, UsageError
from opsd.runner import TaskContext
from opsd.state import utcnow
from tasks.backup_checks import check_download
from tasks.backup_objects import BackupMetadata, BackupObject, head_backup, list_backups
from tasks.download import download_object, progress_on_terminal, sync_file
from tasks.drill_records import latest_drills
from tasks.restore_selection import parse_timestamp, select_backup
from tasks.restore_swap import place_verified_file, pre_restore_path
from tasks.scratch_files import remove_quietly
from tasks.service_control import EcsService, service_stopped

TASK = "restore"
DESCRIPTION = (
    "List backups (--list) or restore one: --latest (default), --at TIMESTAMP or --key KEY, "
    "in place of DATABASE_PATH or --to a new file. Only a file whose sha256 and integrity "
    "check pass replaces anything; the replaced database is kept as <db>.pre-restore-<time>."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--list", action="store_true", help="show backups, newest first")
    parser.add_argument("--json", action="store_true", help="print a JSON document")
    parser.add_argument(
        "--limit", type=int, default=20, help="with --list: how many (0 for all; default 20)"
    )
    choose = parser.add_mutually_exclusive_group()
    choose.add_argument("--latest", action="store_true", help="the newest backup (default)")
    choose.add_argument(
        "--at", metavar="TIMESTAMP", help="newest backup at or before this UTC time"
    )
    choose.add_argument("--key", help="this backup object")
    parser.add_argument(
        "--to", type=Path, metavar="PATH", help="restore to this file instead of DATABASE_PATH"
    )
    parser.add_argument("--force", action="store_true", help="with --to: replace an existing file")
    parser.add_argument(
        "--stop-service",
        action="store_true",
        help="scale the ECS app service (ECS_CLUSTER, ECS_APP_SERVICE) to 0 around the swap",
    )
    parser.add_argument(
        "--yes", action="store_true", help="restore in place without asking (app stopped)"
    )
    parser.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")


@dataclass(frozen=True)
class RestorePlan:
    bucket: str
    backup: BackupObject
    metadata: BackupMetadata
    target: Path
    in_place: bool
    service: EcsService | None

    def describe(self) -> str:
        backup, meta = self.backup, self.metadata
        lines = [
            "restore plan (dry run: nothing changed)",
            f"  backup    s3://{self.bucket}/{backup.key}",
            f"            taken {backup.taken_at:%Y-%m-%d %H:%M} UTC, {backup.size} bytes, "
            f"reason {meta.reason or '?'}, schema {meta.alembic_revision or meta.user_version}",
            f"  download  one GET to a temporary file in {self.target.parent}",
            "  verify    sha256 against the metadata, PRAGMA integrity_check",
        ]
        if self.target.exists():
            kept = pre_restore_path(self.target, "<timestamp>").name
            lines.append(f"  keep      {self.target} as {kept} (and its journal, if any)")
        lines.append(f"  replace   {self.target} by an atomic rename")
        if self.service is not None:
            lines.append(
                f"  service   scale {self.service.service} in {self.service.cluster} to 0, "
                "wait for its tasks to stop, swap, scale back, wait for steady state"
            )
        return "\n".join(lines)


def run(ctx: TaskContext, args: argparse.Namespace) -> TaskResult:
    if args.list:
        return _list(ctx, args)
    plan = _make_plan(ctx, args)
    details = {"bucket": plan.bucket, "key": plan.backup.key, "target": str(plan.target)}
    if args.dry_run:
        output = json.dumps(details) if args.json else plan.describe()
        return TaskResult(
            TASK, Status.OK, f"dry run: would restore {plan.backup.key}", details, output=output
        )
    return _restore(ctx, args, plan, details)


def _make_plan(ctx: TaskContext, args: argparse.Namespace) -> RestorePlan:
    settings = ctx.settings
    target = (args.to or settings.database_path).expanduser()
    in_place = target.resolve() == settings.database_path.expanduser().resolve()
    if target.is_dir():
        raise UsageError(f"--to {target}: is a directory; name the database file")
    if not in_place and target.exists() and not args.force:
        raise UsageError(f"--to {target}: file exists; add --force to replace it")
    if args.stop_service and not in_place:
        raise UsageError("--stop-service: only for a restore in place of DATABASE_PATH")
    if args.stop_service and not (settings.ecs_cluster and settings.ecs_app_service):
        raise UsageError("--stop-service: set ECS_CLUSTER and ECS_APP_SERVICE")
    if in_place and not args.dry_run and not (args.stop_service or args.yes or ctx.interactive):
        raise UsageError(
            f"restore in place of {target}: nothing may write to it meanwhile (stop the app, "
            "or locally: no uploads) and add --yes, or use --stop-service"
        )
    at = parse_timestamp(args.at) if args.at else None
    bucket = settings.s3_bucket_backups
    s3 = ctx.clients("s3")
    backup = select_backup(list_backups(s3, bucket, settings.backup_prefix), at=at, key=args.key)
    head = head_backup(s3, bucket, backup.key)
    if head is None:
        raise TaskError(f"restore {backup.key}: object disappeared from s3://{bucket}")
    metadata = BackupMetadata.from_s3(backup.key, head.get("Metadata", {}))
    service = None
    if args.stop_service:
        service = EcsService(
            ctx.clients("ecs"),
            str(settings.ecs_cluster),
            str(settings.ecs_app_service),
            timeout_s=settings.ecs_wait_timeout_s,
        )
    return RestorePlan(bucket, backup, metadata, target, in_place, service)


def _restore(
    ctx: TaskContext, args: argparse.Namespace, plan: RestorePlan, details: dict[str, Any]
) -> TaskResult:
    key, target = plan.backup.key, plan.target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TaskError(f"restore {key} to {target}: {exc.strerror or exc}") from None
    progress = progress_on_terminal(f"restoring {key.rsplit('/', 1)[-1]}", plan.backup.size)
    temp = download_object(
        ctx.clients("s3"),
        plan.bucket,
        key,
        target.parent,
        progress=progress,
        check_stop=ctx.check_stop,
        durable=False,
    )
    try:
        # The file reaches the disk while it is checked; both finish before any rename.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="fsync") as pool:
            synced = pool.submit(sync_file, temp)
            problems = check_download(temp, plan.metadata, full=False)
            try:
                synced.result()
            except OSError as exc:
                raise TaskError(
                    f"restore {key}: writing {temp.name} failed: {exc.strerror or exc}; "
                    f"{target} untouched"
                ) from None
        if problems:
            raise TaskError(f"restore {key}: refused, {'; '.join(problems)}; {target} untouched")
        ctx.log.info("backup verified", key=key, sha256=plan.metadata.sha256, target=str(target))
        if plan.in_place and not (args.stop_service or args.yes):
            question = f"Replace {target} with {key}? The app must not be writing to it."
            if not ctx.confirm(question):
                return TaskResult(
                    TASK, Status.SKIPPED, "restore cancelled: nothing changed", details
                )
        ctx.check_stop()
        stamp = utcnow().strftime("%Y%m%dT%H%M%SZ")
        if plan.service is not None:
            with service_stopped(plan.service):
                kept = place_verified_file(temp, target, stamp)
        else:
            kept = place_verified_file(temp, target, stamp)
    finally:
        remove_quietly(temp)
    message = f"restored {key} to {target}"
    if kept is not None:
        message += f"; previous database kept as {kept.name}"
        details["kept"] = str(kept)
    details["sha256"] = plan.metadata.sha256
    output = json.dumps(details) if args.json else None
    return TaskResult(TASK, Status.OK, message, details, output=output)


def _list(ctx: TaskContext, args: argparse.Namespace) -> TaskResult:
    settings = ctx.settings
    bucket = settings.s3_bucket_backups
    s3 = ctx.clients("s3")
    backups = list_backups(s3, bucket, settings.backup_prefix)
    shown = backups if args.limit <= 0 else backups[: args.limit]
    drills = latest_drills(ctx.state)
    rows = []
    for backup in shown:
        head = head_backup(s3, bucket, backup.key) or {}
        drill = drills.get(backup.key)
        rows.append(
            {
                "key": backup.key,
                "taken_at": backup.taken_at.isoformat(),
                "size": backup.size,
                "reason": head.get("Metadata", {}).get("reason", ""),
                "storage_class": backup.storage_class,
                "drill": drill.verdict.lower() if drill else None,
                "drilled_at": drill.drilled_at if drill else None,
            }
        )
    message = f"{len(backups)} backups in s3://{bucket}" + (
        f", newest {backups[0].key}" if backups else ""
    )
    output = json.dumps(rows, indent=2) if args.json else _table(rows, len(backups), bucket)
    return TaskResult(
        TASK, Status.OK, message, {"bucket": bucket, "count": len(backups)}, output=output
    )


def _table(rows: list[dict[str, Any]], total: int, bucket: str) -> str:
    if not rows:
        return f"no backups in s3://{bucket}"
    width = max(len(row["key"]) for row in rows)
    lines = [f"{'KEY':<{width}}  {'TAKEN (UTC)':<16}  {'SIZE':>10}  {'REASON':<13}  DRILL"]
    for row in rows:
        drill = f"{row['drill']} {row['drilled_at']}" if row["drill"] else "-"
        lines.append(
            f"{row['key']:<{width}}  {row['taken_at'][:16].replace('T', ' '):<16}  "
            f"{human_size(row['size']):>10}  {row['reason'] or '-':<13}  {drill}"
        )
    if total > len(rows):
        lines.append(f"({total - len(rows)} older backups not shown; --limit 0 shows all)")
    return "\n".join(lines)

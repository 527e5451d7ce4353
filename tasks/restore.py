"""`python -m tasks restore`: list backups; restore one safely, in place or to a new file."""

from __future__ import annotations

import argparse
import json
import os
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from opsd.formatting import human_size, text_table
from opsd.results import Status, TaskError, TaskResult, UsageError
from opsd.runner import TaskContext
from tasks.backups.checks import check_download
from tasks.backups.download import progress_on_terminal, sync_file
from tasks.backups.journal_mode import ensure_rollback_journal
from tasks.backups.objects import BackupMetadata
from tasks.backups.scratch_files import remove_quietly
from tasks.backups.selection import parse_timestamp, select_backup
from tasks.backups.service_control import EcsService, service_stopped
from tasks.backups.sqlite_only import refuse_unless_sqlite
from tasks.backups.store import BackupObject, BackupStore
from tasks.backups.swap import place_verified_file, pre_restore_path
from tasks.backups.target import RestoreTarget, resolve_target
from tasks.backups.trust import CheckedBackup, describe_suspects

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
        "--to",
        metavar="PATH",
        help="restore to this file instead of DATABASE_PATH (DIR/: a file named after the "
        "backup inside DIR)",
    )
    parser.add_argument(
        "--force", action="store_true", help="with --to: replace an existing regular file"
    )
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
    store: BackupStore
    backup: BackupObject
    metadata: BackupMetadata
    destination: RestoreTarget
    in_place: bool
    service: EcsService | None
    suspect: str | None  # why a backup named by --key is not trusted
    passed_over: list[CheckedBackup]

    @property
    def target(self) -> Path:
        return self.destination.path

    def describe(self) -> str:
        backup, meta = self.backup, self.metadata
        lines = [
            "restore plan (dry run: nothing changed)",
            f"  backup    s3://{self.store.bucket}/{backup.key}",
            f"            taken {backup.taken_at:%Y-%m-%d %H:%M} UTC, {backup.size} bytes, "
            f"reason {meta.reason or '?'}, schema {meta.alembic_revision or meta.user_version}",
        ]
        if self.suspect:
            lines.append(f"  SUSPECT   {self.suspect}")
        if self.passed_over:
            lines.append(f"  skipped   suspect: {describe_suspects(self.passed_over)}")
        lines += [
            f"  download  one GET to a temporary file in {self.target.parent}",
            "  verify    sha256 against the metadata, integrity_check, schema and row counts",
        ]
        if self.destination.link is not None:
            link = self.destination.link
            lines.append(f"  symlink   {link} names {self.target}: that file is replaced")
        if self.target.exists():
            kept = pre_restore_path(self.target, "<timestamp>").name
            lines.append(f"  keep      {self.target} as {kept} (and its journal, if any)")
        lines.append(f"  replace   {self.target} by an atomic rename, keeping its mode and owner")
        if self.service is not None:
            lines.append(
                f"  service   scale {self.service.service} in {self.service.cluster} to 0, "
                "wait for its tasks to stop, swap, scale back, wait for steady state"
            )
        return "\n".join(lines)


def run(ctx: TaskContext, args: argparse.Namespace) -> TaskResult:
    refuse_unless_sqlite(ctx.settings, "restore")
    if args.list:
        return _list(ctx, args)
    plan = _make_plan(ctx, args)
    details = {"bucket": plan.store.bucket, "key": plan.backup.key, "target": str(plan.target)}
    if args.dry_run:
        output = json.dumps(details) if args.json else plan.describe()
        return TaskResult(
            ctx.task, Status.OK, f"dry run: would restore {plan.backup.key}", details, output=output
        )
    return _restore(ctx, args, plan, details)


def _make_plan(ctx: TaskContext, args: argparse.Namespace) -> RestorePlan:
    settings = ctx.settings
    live = Path(os.path.realpath(settings.database_path.expanduser()))
    in_place = args.to is None or Path(os.path.realpath(Path(args.to).expanduser())) == live
    if args.stop_service and not in_place:
        raise UsageError("--stop-service: only for a restore in place of DATABASE_PATH")
    if args.stop_service and not (settings.ecs_cluster and settings.ecs_app_service):
        raise UsageError("--stop-service: set ECS_CLUSTER and ECS_APP_SERVICE")
    if in_place and not args.dry_run and not (args.stop_service or args.yes or ctx.interactive):
        raise UsageError(
            f"in place of {settings.database_path}: nothing may write to it meanwhile "
            "(stop the app, or locally: no uploads) and add --yes, or use --stop-service"
        )
    at = parse_timestamp(args.at) if args.at else None
    store = BackupStore.for_settings(settings, ctx.clients("s3"))
    chosen, passed_over = _choose(store, at, args.key, ctx.clock())
    if chosen.metadata is None:
        raise TaskError(f"{chosen.key} cannot be verified, nothing restored: {chosen.suspect}")
    name = chosen.key.rsplit("/", 1)[-1]
    if in_place:
        destination = resolve_target(str(settings.database_path), "DATABASE_PATH", name)
    else:
        destination = resolve_target(str(args.to), "--to", name)
        if destination.path == live:
            raise UsageError(f"--to {args.to}: is DATABASE_PATH; restore in place without --to")
        if destination.exists and not args.force:
            raise UsageError(f"--to {args.to}: file exists; add --force to replace it")
    service = None
    if args.stop_service:
        service = EcsService(
            ctx.clients("ecs"),
            str(settings.ecs_cluster),
            str(settings.ecs_app_service),
            timeout_s=settings.ecs_wait_timeout_s,
        )
    return RestorePlan(
        store,
        chosen.backup,
        chosen.metadata,
        destination,
        in_place,
        service,
        chosen.suspect,
        passed_over,
    )


def _choose(
    store: BackupStore, at: datetime | None, key: str | None, now: datetime
) -> tuple[CheckedBackup, list[CheckedBackup]]:
    """A named key as it is (checked, and said so when suspect); otherwise the newest backup
    we took at or before `at`, passing over suspect objects."""
    listed = store.list()
    first = select_backup(listed, at=at, key=key)
    if key is not None:
        return store.check(first, now), []
    candidates = listed[listed.index(first) :]
    chosen, passed_over = store.newest(now, among=candidates)
    if chosen is None:
        when = f" at or before {at:%Y-%m-%d %H:%M} UTC" if at else ""
        raise TaskError(
            f"no backup{when} to trust, nothing restored; suspect: "
            f"{describe_suspects(passed_over)} (restore --list shows why; --key restores "
            "one on purpose)"
        )
    return chosen, passed_over


def _restore(
    ctx: TaskContext, args: argparse.Namespace, plan: RestorePlan, details: dict[str, Any]
) -> TaskResult:
    key, target = plan.backup.key, plan.target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TaskError(f"{key} to {target}: {exc.strerror or exc}") from None
    progress = progress_on_terminal(f"restoring {key.rsplit('/', 1)[-1]}", plan.backup.size)
    temp = plan.store.download(
        key, target.parent, progress=progress, check_stop=ctx.check_stop, durable=False
    )
    try:
        # The file reaches the disk while it is checked; both finish before any rename.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="fsync") as pool:
            synced = pool.submit(sync_file, temp)
            problems = check_download(temp, plan.metadata, full=True)
            try:
                synced.result()
            except OSError as exc:
                raise TaskError(
                    f"{key}: writing {temp.name} failed: {exc.strerror or exc}; {target} untouched"
                ) from None
        if problems:
            raise TaskError(f"{key} refused, {'; '.join(problems)}; {target} untouched")
        if ensure_rollback_journal(temp):
            ctx.log.info("wal-mode backup switched to rollback-journal mode", key=key)
        ctx.log.info("backup verified", key=key, sha256=plan.metadata.sha256, target=str(target))
        if plan.in_place and not (args.stop_service or args.yes):
            question = f"Replace {target} with {key}? The app must not be writing to it."
            if not ctx.confirm(question):
                return TaskResult(
                    ctx.task, Status.SKIPPED, "restore cancelled: nothing changed", details
                )
        ctx.check_stop()
        stamp = ctx.clock().strftime("%Y%m%dT%H%M%SZ")
        with service_stopped(plan.service) if plan.service else nullcontext():
            kept = place_verified_file(temp, target, stamp)
    finally:
        remove_quietly(temp)
    message = f"restored {key} to {plan.destination.describe()}"
    if plan.suspect:
        message += f" (suspect, restored as named by --key: {plan.suspect})"
        details["suspect"] = plan.suspect
    if kept is not None:
        message += f"; previous database kept as {kept.name}"
        details["kept"] = str(kept)
    details["sha256"] = plan.metadata.sha256
    output = json.dumps(details) if args.json else None
    return TaskResult(ctx.task, Status.OK, message, details, output=output)


def _list(ctx: TaskContext, args: argparse.Namespace) -> TaskResult:
    store = BackupStore.for_settings(ctx.settings, ctx.clients("s3"))
    bucket = store.bucket
    backups = store.list()
    shown = backups if args.limit <= 0 else backups[: args.limit]
    drills = ctx.state.latest_drills()
    now = ctx.clock()
    rows = []
    for backup in shown:
        head = store.head(backup.key)
        checked = store.check(backup, now, head=head) if head else None
        drill = drills.get(backup.key)
        rows.append(
            {
                "key": backup.key,
                "taken_at": backup.taken_at.isoformat(),
                "size": backup.size,
                "reason": (head or {}).get("Metadata", {}).get("reason", ""),
                "storage_class": backup.storage_class,
                "drill": drill.verdict.lower() if drill else None,
                "drilled_at": drill.drilled_at if drill else None,
                "suspect": checked.suspect if checked else "object gone since it was listed",
            }
        )
    suspects = sum(1 for row in rows if row["suspect"])
    trusted = next((row["key"] for row in rows if not row["suspect"]), None)
    message = f"{len(backups)} backups in s3://{bucket}" + (
        f", newest {trusted}" if trusted else ""
    )
    if suspects:
        message += f"; {suspects} suspect (never chosen by --latest or --at)"
    output = json.dumps(rows, indent=2) if args.json else _table(rows, len(backups), bucket)
    details = {"bucket": bucket, "count": len(backups), "suspect": suspects}
    return TaskResult(ctx.task, Status.OK, message, details, output=output)


def _table(rows: list[dict[str, Any]], total: int, bucket: str) -> str:
    if not rows:
        return f"no backups in s3://{bucket}"
    cells = [
        [
            row["key"],
            row["taken_at"][:16].replace("T", " "),
            human_size(row["size"]),
            row["reason"] or "-",
            f"{row['drill']} {row['drilled_at']}" if row["drill"] else "-",
        ]
        for row in rows
    ]
    header = ["KEY", "TAKEN (UTC)", "SIZE", "REASON", "DRILL"]
    table = text_table([header, *cells], min_widths=(0, 16, 10, 13), right={2})
    lines = table[:1]
    for row, line in zip(rows, table[1:], strict=True):
        lines.append(line)
        if row["suspect"]:
            lines.append(f"  SUSPECT: {row['suspect']}; never chosen by --latest or --at")
    if total > len(rows):
        lines.append(f"({total - len(rows)} older backups not shown; --limit 0 shows all)")
    return "\n".join(lines)

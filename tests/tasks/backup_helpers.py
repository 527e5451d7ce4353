"""Shared helpers of the backup, restore and drill tests."""

from __future__ import annotations

import hashlib
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any

from opsd.results import TaskResult
from opsd.runner import TaskContext, execute
from tasks.backups.objects import BackupMetadata
from tasks.registry import TASKS

BACKUP_DEFAULTS: dict[str, Any] = {"reason": "scheduled", "dry_run": False, "allow_empty": False}


def run_task(ctx: TaskContext, **arguments: Any) -> TaskResult:
    """Run a task through the runner, with its parser's defaults plus `arguments`."""
    spec = TASKS[ctx.task]
    args = spec.parser().parse_args([])
    for name, value in arguments.items():
        setattr(args, name, value)
    return execute(spec, ctx, args)


def add_bulk(path: Path, megabytes: int) -> Path:
    """Grow an app database with a table of random blobs, to force several upload parts."""
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE attachments (id INTEGER PRIMARY KEY, data BLOB)")
    conn.execute(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
        "INSERT INTO attachments (data) SELECT randomblob(1024) FROM n",
        (megabytes * 1024,),
    )
    conn.commit()
    conn.close()
    return path


def corrupt_middle_page(path: Path) -> None:
    """Overwrite bytes inside a b-tree page so that integrity_check fails (header intact)."""
    conn = sqlite3.connect(path)
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    page_count = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.close()
    with path.open("r+b") as handle:
        handle.seek(page_size * (page_count // 2) + 8)
        handle.write(b"\xff" * 200)


def scratch_files(scratch: Path) -> list[Path]:
    return sorted(scratch.iterdir()) if scratch.exists() else []


def bucket_keys(s3: Any, bucket: str) -> list[str]:
    return [item["Key"] for item in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


def plant_backup(
    s3: Any, bucket: str, key: str, taken_at: datetime, body: bytes = b"x", **metadata: str
) -> None:
    """An object with the metadata the backup task writes (`metadata` overrides fields);
    its bytes are not a database: for tests of listing and choosing, not of restoring."""
    fields = BackupMetadata(
        sha256=hashlib.sha256(body).hexdigest(),
        size=len(body),
        page_count=1,
        page_size=4096,
        sqlite_version="3.40.1",
        user_version=1,
        alembic_revision="0001_initial",
        row_counts={"analyses": 1},
        taken_at=taken_at.isoformat(timespec="seconds"),
    ).to_s3()
    s3.put_object(Bucket=bucket, Key=key, Body=body, Metadata={**fields, **metadata})

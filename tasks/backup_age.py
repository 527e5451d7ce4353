"""The newest backup object (DESIGN §4 key format), in as few LIST requests as can be.

Keys are `backup-YYYY-MM-DD-HH-MM.db` (UTC) under BACKUP_PREFIX, so listing by the current
month's key prefix finds the newest backup with one request; the previous month and then the
whole prefix are tried only when that month has none.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from opsd.settings import Settings
from tasks.backup_objects import key_time, normalise_prefix


def _newest_under(s3: Any, bucket: str, folder: str, start: str) -> tuple[str, datetime] | None:
    newest: tuple[str, datetime] | None = None
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=folder + start)
    for page in pages:
        for entry in page.get("Contents", []):
            name = entry["Key"][len(folder) :]
            taken = None if "/" in name else key_time(name)
            if taken is not None and (newest is None or taken > newest[1]):
                newest = (entry["Key"], taken)
    return newest


def newest_backup(s3: Any, settings: Settings, now: datetime) -> tuple[str, datetime] | None:
    """(key, time taken) of the newest backup, or None when there is none."""
    folder = normalise_prefix(settings.backup_prefix)
    previous = (now.year - 1, 12) if now.month == 1 else (now.year, now.month - 1)
    for start in (
        f"backup-{now:%Y-%m}",
        f"backup-{previous[0]:04d}-{previous[1]:02d}",
        "backup-",
    ):
        found = _newest_under(s3, settings.s3_bucket_backups, folder, start)
        if found is not None:
            return found
    return None

"""The newest backup we took (ARCHITECTURE §4 key format), in as few requests as can be.

Keys are `backup-YYYY-MM-DD-HH-MM.db` (UTC) under BACKUP_PREFIX, so listing by the current
month's key prefix finds the newest backup with one request; the previous month and then the
whole prefix are tried only when that month has none. The newest candidate is checked with
one HEAD (tasks.backup_trust): a suspect object (planted, future-dated, without metadata, of
an empty database) is passed over, and the age is that of the snapshot the metadata records,
to the second, not of the minute the key names.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from opsd.results import TaskError
from opsd.settings import Settings
from tasks.backup_objects import BackupObject, key_time, normalise_prefix
from tasks.backup_trust import newest_trusted


def _listed_under(s3: Any, bucket: str, folder: str, start: str) -> list[BackupObject]:
    """The backup objects whose key starts with folder + start, newest first."""
    found = []
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=folder + start)
    for page in pages:
        for entry in page.get("Contents", []):
            name = entry["Key"][len(folder) :]
            taken = None if "/" in name else key_time(name)
            if taken is not None:
                found.append(
                    BackupObject(
                        entry["Key"], taken, entry["Size"], last_modified=entry.get("LastModified")
                    )
                )
    return sorted(found, key=lambda backup: backup.taken_at, reverse=True)


def newest_backup(s3: Any, settings: Settings, now: datetime) -> tuple[str, datetime] | None:
    """(key, time its snapshot was taken) of the newest backup we took, or None when there
    is none. AWS failures are raised as botocore's errors."""
    bucket = settings.s3_bucket_backups
    folder = normalise_prefix(settings.backup_prefix)
    previous = (now.year - 1, 12) if now.month == 1 else (now.year, now.month - 1)
    for start in (
        f"backup-{now:%Y-%m}",
        f"backup-{previous[0]:04d}-{previous[1]:02d}",
        "backup-",
    ):
        try:
            chosen, _ = newest_trusted(s3, bucket, _listed_under(s3, bucket, folder, start), now)
        except TaskError as exc:
            if isinstance(exc.__cause__, ClientError | BotoCoreError):
                raise exc.__cause__ from None
            raise
        if chosen is not None and chosen.recorded_at is not None:
            return chosen.key, chosen.recorded_at
    return None

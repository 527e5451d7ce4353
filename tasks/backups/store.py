"""The backup store (ARCHITECTURE §4): the one place that knows backup keys and talks to S3
about backup objects. Modelled on Litestream's replica client: the key codec and list,
newest, head, check, put_once and download; every task and the daemon go through it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from opsd.aws import describe_aws_error, error_code
from opsd.results import TaskError
from opsd.settings import Settings
from tasks.backups.checksums import FileDigests
from tasks.backups.download import download_object
from tasks.backups.trust import CheckedBackup, judge_backup, listing_suspicion
from tasks.backups.upload import upload_once

KEY_TIME_FORMAT = "%Y-%m-%d-%H-%M"
NAMED_LIKE = "backup-YYYY-MM-DD-HH-MM.db"
_KEY_NAME = re.compile(r"^backup-(\d{4}-\d{2}-\d{2}-\d{2}-\d{2})\.db$")


def normalise_prefix(prefix: str) -> str:
    """'' stays ''; 'db' and 'db/' both become 'db/'."""
    prefix = prefix.strip("/")
    return f"{prefix}/" if prefix else ""


def key_time(key: str) -> datetime | None:
    """The UTC minute a backup key names, or None when the key is not a backup's."""
    match = _KEY_NAME.match(key.rsplit("/", 1)[-1])
    if not match:
        return None
    return datetime.strptime(match.group(1), KEY_TIME_FORMAT).replace(tzinfo=UTC)


@dataclass(frozen=True)
class BackupObject:
    key: str
    taken_at: datetime
    size: int
    storage_class: str = "STANDARD"
    last_modified: datetime | None = None


class BackupStore:
    """The backup objects of one bucket under one prefix."""

    def __init__(self, s3: Any, bucket: str, prefix: str = "") -> None:
        self.s3 = s3
        self.bucket = bucket
        self.prefix = normalise_prefix(prefix)

    @classmethod
    def for_settings(cls, settings: Settings, s3: Any) -> BackupStore:
        return cls(s3, settings.s3_bucket_backups, settings.backup_prefix)

    @property
    def location(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def key(self, taken_at: datetime) -> str:
        return f"{self.prefix}backup-{taken_at.astimezone(UTC).strftime(KEY_TIME_FORMAT)}.db"

    def list(self, start: str = "") -> list[BackupObject]:
        """The backups whose name begins `backup-{start}` (e.g. '2026-11'), newest first;
        objects in sub-folders or not named like a backup are left out."""
        found: list[BackupObject] = []
        try:
            pages = self.s3.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=f"{self.prefix}backup-{start}"
            )
            for page in pages:
                for item in page.get("Contents", ()):
                    name = item["Key"][len(self.prefix) :]
                    taken_at = None if "/" in name else key_time(name)
                    if taken_at is not None:
                        found.append(
                            BackupObject(
                                item["Key"],
                                taken_at,
                                item["Size"],
                                item.get("StorageClass", "STANDARD"),
                                item.get("LastModified"),
                            )
                        )
        except Exception as exc:
            raise TaskError(describe_aws_error(f"list backups in {self.location}", exc)) from exc
        return sorted(found, key=lambda obj: obj.taken_at, reverse=True)

    def head(self, key: str) -> dict[str, Any] | None:
        """The HEAD response of a backup object, or None when there is no such key."""
        try:
            return self.s3.head_object(Bucket=self.bucket, Key=key, ChecksumMode="ENABLED")  # type: ignore[no-any-return]
        except Exception as exc:
            if error_code(exc) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise TaskError(describe_aws_error(f"look up s3://{self.bucket}/{key}", exc)) from exc

    def check(
        self, backup: BackupObject, now: datetime, head: dict[str, Any] | None = None
    ) -> CheckedBackup:
        """Whether the object is a backup we took (one HEAD unless given)."""
        return judge_backup(backup, self.head(backup.key) if head is None else head, now)

    def newest(
        self, now: datetime, among: list[BackupObject] | None = None
    ) -> tuple[CheckedBackup | None, list[CheckedBackup]]:
        """The newest backup we took, and the suspect objects newer than it passed over on
        the way: among `among` (newest first), or else in as few requests as can be.

        Keys sort by time, so this month's key prefix usually holds the newest backup (one
        LIST, one HEAD); the previous month and then the whole prefix are listed only when
        it does not. Future-dated objects beyond those months are then not looked at."""
        if among is not None:
            return self._first_trusted(among, now, {})
        previous = (now.year - 1, 12) if now.month == 1 else (now.year, now.month - 1)
        judged: dict[str, CheckedBackup] = {}
        for start in (f"{now:%Y-%m}", f"{previous[0]:04d}-{previous[1]:02d}", ""):
            chosen, passed_over = self._first_trusted(self.list(start), now, judged)
            if chosen is not None:
                return chosen, passed_over
        return None, passed_over

    def _first_trusted(
        self, backups: list[BackupObject], now: datetime, judged: dict[str, CheckedBackup]
    ) -> tuple[CheckedBackup | None, list[CheckedBackup]]:
        """One HEAD per object not judged before; none for a key no one could have written."""
        passed_over: list[CheckedBackup] = []
        for backup in backups:
            if backup.key not in judged:
                early = listing_suspicion(backup, now)
                judged[backup.key] = (
                    CheckedBackup(backup, None, None, early) if early else self.check(backup, now)
                )
            if judged[backup.key].suspect is None:
                return judged[backup.key], passed_over
            passed_over.append(judged[backup.key])
        return None, passed_over

    def put_once(
        self, key: str, path: Path, digests: FileDigests, metadata: dict[str, str], **options: Any
    ) -> None:
        """Write `path` to `key` unless the key exists (raises s3_upload.ObjectExists);
        `options` as tasks.backups.upload.upload_once takes them."""
        upload_once(self.s3, self.bucket, key, path, digests, metadata, **options)

    def download(self, key: str, directory: Path, **options: Any) -> Path:
        """Stream the object into a new temporary file in `directory` and return its path
        (tasks.backups.download.download_object: progress, check_stop, durable)."""
        return download_object(self.s3, self.bucket, key, directory, **options)

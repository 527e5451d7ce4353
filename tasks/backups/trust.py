"""Whether a backup object is one the backup task wrote: its name, its times and its
metadata agree. Anyone who can write to the bucket can plant `backup-2099-01-01-00-00.db`;
such an object is *suspect*: listed as such, never chosen by `restore --latest` or `--at`,
by the restore drill's default, or by the backup-age metric.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from opsd.results import TaskError
from tasks.backups.content import metadata_problem
from tasks.backups.objects import BackupMetadata

if TYPE_CHECKING:
    from tasks.backups.store import BackupObject

# S3 refuses requests signed with a clock further off than this (RequestTimeTooSkewed), so
# no host that could upload a backup names it further into the future.
CLOCK_SKEW = timedelta(minutes=15)


@dataclass(frozen=True)
class CheckedBackup:
    backup: BackupObject
    metadata: BackupMetadata | None  # None when missing or malformed
    recorded_at: datetime | None  # the metadata's taken-at: when the snapshot was taken
    suspect: str | None  # why it is not trusted; None for a backup we took

    @property
    def key(self) -> str:
        return self.backup.key


def listing_suspicion(backup: BackupObject, now: datetime) -> str | None:
    """What the listing alone shows (no request): a key time nobody could have written."""
    if backup.taken_at > now + CLOCK_SKEW:
        return f"named for {backup.taken_at:%Y-%m-%d %H:%M} UTC, in the future"
    written = backup.last_modified
    if written is not None and backup.taken_at > written + CLOCK_SKEW:
        return f"named for a time after it was written ({written:%Y-%m-%d %H:%M} UTC)"
    return None


def _recorded_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError("no time zone")
    return moment


def judge_backup(backup: BackupObject, head: dict[str, Any] | None, now: datetime) -> CheckedBackup:
    """The object's listing, HEAD response (None: no such object) and metadata against each
    other."""
    early = listing_suspicion(backup, now)
    if head is None:
        return CheckedBackup(backup, None, None, early or "object gone since it was listed")
    if not head.get("Metadata"):
        return CheckedBackup(backup, None, None, early or "no backup metadata")
    try:
        metadata = BackupMetadata.from_s3(backup.key, head.get("Metadata", {}))
    except TaskError as exc:
        reason = str(exc).removeprefix(f"{backup.key}: ")
        return CheckedBackup(backup, None, None, early or reason)
    try:
        recorded = _recorded_time(metadata.taken_at)
    except ValueError:
        return CheckedBackup(
            backup, metadata, None, early or f"backup metadata taken-at {metadata.taken_at!r}"
        )
    return CheckedBackup(
        backup, metadata, recorded, early or _disagreement(backup, metadata, recorded)
    )


def _disagreement(backup: BackupObject, metadata: BackupMetadata, recorded: datetime) -> str | None:
    if recorded.replace(second=0, microsecond=0) != backup.taken_at:
        return f"recorded time {metadata.taken_at} is not the minute its key names"
    if metadata.size != backup.size:
        return f"{backup.size} bytes, its metadata records {metadata.size}"
    return metadata_problem(metadata)


def describe_suspects(suspects: list[CheckedBackup], shown: int = 3) -> str:
    """`key (reason), key (reason) (+N more)` on one line."""
    parts = [f"{s.key.rsplit('/', 1)[-1]} ({s.suspect})" for s in suspects[:shown]]
    more = f" (+{len(suspects) - shown} more)" if len(suspects) > shown else ""
    return ", ".join(parts) + more

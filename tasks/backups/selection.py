"""Which backup a restore takes: the newest, the newest at or before a time, or a named key."""

from __future__ import annotations

from datetime import UTC, datetime

from opsd.results import TaskError, UsageError
from tasks.backups.store import BackupObject

SHOWN_NEAREST = 3


def parse_timestamp(text: str) -> datetime:
    """ISO 8601 or 'YYYY-MM-DD HH:MM'; a time without a zone is UTC."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"--at {text!r}: not a timestamp (use ISO 8601 or 'YYYY-MM-DD HH:MM', UTC)"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _describe(backups: list[BackupObject]) -> str:
    return ", ".join(b.key for b in backups)


def select_backup(
    backups: list[BackupObject], *, at: datetime | None = None, key: str | None = None
) -> BackupObject:
    """`backups` newest first, as BackupStore.list returns them."""
    if not backups:
        raise TaskError("no backups to restore from")
    if key is not None:
        for backup in backups:
            if backup.key == key or backup.key.rsplit("/", 1)[-1] == key:
                return backup
        raise TaskError(f"no backup named {key} (newest: {_describe(backups[:SHOWN_NEAREST])})")
    if at is None:
        return backups[0]
    for backup in backups:
        if backup.taken_at <= at:
            return backup
    earliest = list(reversed(backups))[:SHOWN_NEAREST]
    which = "the earliest is" if len(earliest) == 1 else "the earliest are"
    raise TaskError(
        f"no backup at or before {at:%Y-%m-%d %H:%M} UTC; {which} {_describe(earliest)}"
    )

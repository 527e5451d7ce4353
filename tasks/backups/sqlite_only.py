"""The tasks that work on the SQLite file only (backup, restore, the drill) refuse a
PostgreSQL DATABASE_URL, in one line naming what takes their place. Apart from the readers of
`app_database`, so that these tasks never load psycopg (0.13 CPU s, half a second of a task
at 0.25 vCPU)."""

from __future__ import annotations

from opsd.results import UsageError
from opsd.settings import Settings

TAKES_THEIR_PLACE = {
    "backup": "RDS automated backups (daily snapshots and transaction logs) take its place",
    "restore": "RDS point-in-time restore to a new instance takes its place",
    "verify-backup": "AWS Backup restore testing of the RDS instance takes its place",
}


def refuse_unless_sqlite(settings: Settings, task: str) -> None:
    """UsageError (exit 2) when DATABASE_URL names something other than the SQLite file."""
    if settings.database_is_sqlite:
        return
    raise UsageError(
        f"{task} works on the SQLite file only and DATABASE_URL names "
        f"{settings.database_name}: {TAKES_THEIR_PLACE[task]}"
    )

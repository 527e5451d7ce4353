"""Whether a database file is the app's database, before it is backed up and after.

A volume that failed to mount shows an empty file (or one SQLite reads as an empty
database); a copy of it uploaded as "the newest backup" would be restored over the real
data. A backup must hold the app's schema, which the Alembic revision proves, unless the
operator says `--allow-empty` on purpose. A database in WAL mode is refused before SQLite
opens it: the app runs in rollback-journal mode (EFS), and a reader of a WAL database leaves
-wal and -shm files beside the live database that no task may safely remove.
"""

from __future__ import annotations

import os
from pathlib import Path

from opsd.database import SQLITE_HEADER, in_rollback_journal_mode
from opsd.results import TaskError
from tasks.backups.objects import BackupMetadata
from tasks.backups.snapshot import DatabaseFacts

_HEADER_BYTES = 100
ALLOW_EMPTY_HINT = "add --allow-empty to back it up on purpose"


def check_source_file(path: Path, *, allow_empty: bool) -> None:
    """Refuse (TaskError, one line) an empty or WAL-mode database before it is opened.
    A missing or non-SQLite file is left to the snapshot, which names the problem."""
    try:
        with path.open("rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            header = handle.read(_HEADER_BYTES)
    except OSError:
        return
    if size == 0:
        if allow_empty:
            return
        raise TaskError(
            f"backup {path}: the database file is empty (0 bytes; a volume that failed to "
            f"mount?), nothing uploaded; {ALLOW_EMPTY_HINT}"
        )
    in_wal_mode = not in_rollback_journal_mode(header)
    if header.startswith(SQLITE_HEADER) and len(header) == _HEADER_BYTES and in_wal_mode:
        raise TaskError(
            f"backup {path}: the database is in WAL mode, nothing uploaded; the app runs "
            "in rollback-journal mode: stop whatever switched it and run "
            "PRAGMA journal_mode=DELETE on it (or start the app, which does)"
        )


def schema_problem(facts: DatabaseFacts) -> str | None:
    """Why a snapshot is not a copy of the app's database, or None when it is."""
    if facts.alembic_revision is None:
        if not facts.row_counts:
            return "the database is empty (no tables)"
        return "the database lacks the app's schema (no Alembic revision)"
    return None


def check_snapshot(database: Path, facts: DatabaseFacts, *, allow_empty: bool) -> None:
    problem = schema_problem(facts)
    if problem is not None and not allow_empty:
        raise TaskError(f"backup {database}: {problem}, nothing uploaded; {ALLOW_EMPTY_HINT}")


def metadata_problem(metadata: BackupMetadata) -> str | None:
    """The same judgement from an object's metadata (for objects already in the bucket)."""
    if metadata.alembic_revision is None:
        if not metadata.row_counts:
            return "holds an empty database (no tables)"
        return "holds no app schema (no Alembic revision)"
    return None

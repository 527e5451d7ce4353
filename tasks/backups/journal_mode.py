"""A restored or drilled copy in the app's journal mode (rollback journal, ARCHITECTURE §2)."""

from __future__ import annotations

from pathlib import Path

from opsd.database import DatabaseError, connect, in_rollback_journal_mode
from opsd.results import TaskError

_HEADER_BYTES = 20


def ensure_rollback_journal(path: Path) -> bool:
    """Switch a database file we own (a verified download, not yet in place) from WAL to
    rollback-journal mode, as the app's own opening does; True when it was in WAL mode.
    Backups taken before WAL databases were refused may be in WAL mode."""
    with path.open("rb") as handle:
        if in_rollback_journal_mode(handle.read(_HEADER_BYTES)):
            return False
    try:
        connect(path, create=False).close()  # sets journal_mode=DELETE, or says why not
    except DatabaseError as exc:
        raise TaskError(f"switch {path.name} to rollback-journal mode: {exc}") from None
    return True

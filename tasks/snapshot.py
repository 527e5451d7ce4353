"""A consistent snapshot of the app database, and the facts a backup's metadata records."""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import tempfile
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from opsd.database import (
    DatabaseError,
    alembic_revision,
    connect,
    integrity_errors,
    table_row_counts,
)
from opsd.results import TaskError
from tasks.checksums import FileDigests, file_digests


@dataclass(frozen=True)
class DatabaseFacts:
    """What a database file says about itself; compared against a backup's metadata."""

    page_count: int
    page_size: int
    sqlite_version: str
    user_version: int
    alembic_revision: str | None
    row_counts: dict[str, int] = field(default_factory=dict)
    integrity_errors: tuple[str, ...] = ()


def integrity_summary(errors: Sequence[str], shown: int = 2) -> str:
    """integrity_check's report on one line: the first problems and how many there were."""
    lines = [
        line.strip()
        for error in errors
        for line in error.splitlines()
        if line.strip() and not line.startswith("*** in database")
    ]
    more = f" (+{len(lines) - shown} more)" if len(lines) > shown else ""
    return "; ".join(lines[:shown]) + more


# Scratch files in use by this process, each with an open descriptor holding an flock on
# it. A process killed with SIGKILL cannot remove its scratch file, but its lock dies with
# it: a later run removes the scratch files nobody holds (`remove_abandoned`).
_held: dict[Path, int] = {}
_held_guard = threading.Lock()
CLAIMING = ".claiming-"
SNAPSHOT_PREFIX = "backup-"


def scratch_file(directory: Path | None, prefix: str, suffix: str = ".db") -> Path:
    """A new empty file for temporary work (SCRATCH_DIR, else the system temp dir), locked
    by this process until `remove_quietly(path)`."""
    if directory is not None:
        directory.mkdir(parents=True, exist_ok=True)
    while True:
        # Locked before it takes its real name, so no cleaner ever sees it unlocked.
        descriptor, name = tempfile.mkstemp(
            prefix=f"{CLAIMING}{prefix}", suffix=suffix, dir=directory
        )
        claiming = Path(name)
        path = claiming.with_name(claiming.name.removeprefix(CLAIMING))
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            os.link(claiming, path)
        except (FileExistsError, FileNotFoundError):
            os.close(descriptor)
            continue
        finally:
            with contextlib.suppress(FileNotFoundError):
                claiming.unlink()
        with _held_guard:
            _held[path] = descriptor
        return path


def remove_quietly(path: Path | None) -> None:
    """Remove a temporary file (and a journal SQLite may have left beside it)."""
    if path is None:
        return
    for leftover in (path, path.with_name(path.name + "-journal")):
        with contextlib.suppress(FileNotFoundError):
            leftover.unlink()
    with _held_guard:
        descriptor = _held.pop(path, None)
    if descriptor is not None:
        os.close(descriptor)


def remove_abandoned(directory: Path, prefix: str, suffix: str = ".db") -> list[Path]:
    """Remove the scratch files `scratch_file` made here whose process is gone (no lock)."""
    removed = []
    for path in sorted(directory.glob(f"{prefix}*{suffix}")) + sorted(
        directory.glob(f"{CLAIMING}{prefix}*{suffix}")
    ):
        try:
            descriptor = os.open(path, os.O_RDONLY)
        except (FileNotFoundError, IsADirectoryError):
            continue
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue  # its process is alive and still using it
        else:
            for leftover in (path, path.with_name(path.name + "-journal")):
                with contextlib.suppress(FileNotFoundError):
                    leftover.unlink()
            removed.append(path)
        finally:
            os.close(descriptor)
    return removed


def snapshot_database(source: Path, scratch_dir: Path | None, busy_timeout_ms: int) -> Path:
    """Copy `source` with SQLite's online backup API into a new temporary file.

    The copy is one step, so it is consistent: writers wait (busy timeout) while it runs.
    The caller owns the returned file and must remove it.
    """
    try:
        src = connect(source, readonly=True, busy_timeout_ms=busy_timeout_ms)
    except DatabaseError as exc:
        raise TaskError(f"snapshot {exc}") from None
    target: Path | None = None
    try:
        target = scratch_file(scratch_dir, SNAPSHOT_PREFIX)
        dest = sqlite3.connect(target, isolation_level=None)
        try:
            # A scratch copy, discarded on any failure, needs neither a journal nor fsync;
            # without them the copy, and so the writers' wait, is about half as long.
            dest.execute("PRAGMA journal_mode = OFF")
            dest.execute("PRAGMA synchronous = OFF")
            src.backup(dest)
        finally:
            dest.close()
    except sqlite3.Error as exc:
        remove_quietly(target)
        raise TaskError(f"snapshot {source}: {exc}") from None
    except OSError as exc:
        remove_quietly(target)
        raise TaskError(f"snapshot {source} into {scratch_dir or 'temp dir'}: {exc}") from None
    except BaseException:
        remove_quietly(target)
        raise
    finally:
        src.close()
    return target


def read_database_facts(
    path: Path, busy_timeout_ms: int = 30_000, *, check_integrity: bool = True
) -> DatabaseFacts:
    """Integrity check (unless told not to), page layout, schema version and row counts."""
    try:
        conn = connect(path, readonly=True, busy_timeout_ms=busy_timeout_ms)
    except DatabaseError as exc:
        return DatabaseFacts(0, 0, sqlite3.sqlite_version, 0, None, {}, (str(exc),))
    try:
        errors = integrity_errors(conn) if check_integrity else []
        if errors:
            return DatabaseFacts(0, 0, sqlite3.sqlite_version, 0, None, {}, tuple(errors))
        return DatabaseFacts(
            page_count=conn.execute("PRAGMA page_count").fetchone()[0],
            page_size=conn.execute("PRAGMA page_size").fetchone()[0],
            sqlite_version=sqlite3.sqlite_version,
            user_version=conn.execute("PRAGMA user_version").fetchone()[0],
            alembic_revision=alembic_revision(conn),
            row_counts=table_row_counts(conn),
        )
    except sqlite3.DatabaseError as exc:
        return DatabaseFacts(0, 0, sqlite3.sqlite_version, 0, None, {}, (str(exc),))
    finally:
        conn.close()


def examine(path: Path, part_size: int, busy_timeout_ms: int) -> tuple[DatabaseFacts, FileDigests]:
    """Facts (without the integrity check) and digests of a file, side by side: SQLite and
    hashlib both release the GIL."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sha256") as pool:
        digests = pool.submit(file_digests, path, part_size)
        facts = read_database_facts(path, busy_timeout_ms, check_integrity=False)
        return facts, digests.result()


class BackgroundIntegrityCheck:
    """`PRAGMA integrity_check` in a thread, so that it runs while the parts upload."""

    def __init__(self, path: Path, busy_timeout_ms: int = 30_000) -> None:
        self._path = path
        self._busy_timeout_ms = busy_timeout_ms
        self._conn: sqlite3.Connection | None = None
        self._opened = threading.Event()
        self._errors: list[str] = []
        self._thread = threading.Thread(target=self._check, name="integrity-check", daemon=True)
        self._thread.start()

    def _check(self) -> None:
        try:
            self._conn = connect(
                self._path,
                readonly=True,
                busy_timeout_ms=self._busy_timeout_ms,
                check_same_thread=False,
            )
        except DatabaseError as exc:
            self._errors = [str(exc)]
            return
        finally:
            self._opened.set()
        try:
            self._errors = integrity_errors(self._conn)
        finally:
            self._conn.close()

    def errors(self) -> list[str]:
        """Wait for the check; the problems it found (empty when the file is sound)."""
        self._thread.join()
        return self._errors

    def cancel(self) -> None:
        """Stop a check still running (on failure or SIGTERM) and wait for the thread."""
        self._opened.wait()
        if self._thread.is_alive() and self._conn is not None:
            with contextlib.suppress(sqlite3.ProgrammingError):
                self._conn.interrupt()
        self._thread.join()

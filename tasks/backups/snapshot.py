"""A consistent snapshot of the app database, and the facts a backup's metadata records."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import sqlite3
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Protocol

import apsw

from opsd.database import (
    DatabaseError,
    alembic_revision,
    connect,
    in_rollback_journal_mode,
    integrity_errors,
    table_root_pages,
    table_row_counts,
)
from opsd.results import TaskError
from tasks.backups import prefetched_check
from tasks.backups.checksums import DIRECT_ALIGNMENT, aligned_buffer
from tasks.backups.memory import fits_in_memory
from tasks.backups.row_census import RowCensus
from tasks.backups.scratch_files import remove_quietly, scratch_file


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


class CopyObserver(Protocol):
    """Told how the copy of a rollback-journal database advances (checksums.CopyDigests)."""

    def copy_started(self, path: Path, size: int) -> None: ...

    def copied(self, count: int) -> None: ...

    def copy_ended(self) -> None: ...


class _Unobserved:
    def copy_started(self, path: Path, size: int) -> None:
        """Nobody follows this copy."""

    def copied(self, count: int) -> None:
        """Nobody follows this copy."""

    def copy_ended(self) -> None:
        """Nobody follows this copy."""


_UNOBSERVED = _Unobserved()
SNAPSHOT_PREFIX = "backup-"
# Bytes 0-99 of the database file; bytes 18 and 19 say rollback journal (1) or WAL (2).
_HEADER_BYTES = 100
_COPY_CHUNK = 16 << 20


def snapshot_database(
    source: Path,
    scratch_dir: Path | None,
    busy_timeout_ms: int,
    observer: CopyObserver = _UNOBSERVED,
) -> Path:
    """A consistent copy of `source` in a new temporary file (locked; see scratch_files).

    In rollback-journal mode (ARCHITECTURE §2) the file is copied as it is by the kernel while a
    read transaction holds SQLite's SHARED lock: no writer can commit until the copy is
    done, and it takes a fraction of the time SQLite's backup API needs (the file is read
    into the page cache first, outside the lock), so writers wait that much less. The copy
    is hashed (by `observer`, while it is written) and checked by the caller; one larger
    than the memory at hand is copied past the page cache instead, and hashed after. A
    database in WAL mode, whose committed pages may still be in the -wal file, is copied
    with the backup API. The caller removes the file.
    """
    try:
        src = connect(source, readonly=True, busy_timeout_ms=busy_timeout_ms)
    except DatabaseError as exc:
        raise TaskError(f"snapshot {exc}") from None
    target: Path | None = None
    try:
        target = scratch_file(scratch_dir, SNAPSHOT_PREFIX)
        with source.open("rb", buffering=0) as source_file:
            _warm_page_cache(source_file.fileno())
            # This descriptor stays open until the read transaction has ended: closing any
            # descriptor of a file drops every POSIX lock the process holds on it.
            src.execute("BEGIN")
            try:
                src.execute("SELECT count(*) FROM sqlite_master").fetchone()  # SHARED lock
                page_count = src.execute("PRAGMA page_count").fetchone()[0]
                page_size = src.execute("PRAGMA page_size").fetchone()[0]
                if in_rollback_journal_mode(os.pread(source_file.fileno(), _HEADER_BYTES, 0)):
                    _copy_bytes(source_file.fileno(), target, page_count * page_size, observer)
                else:
                    _backup_pages(src, target)
            finally:
                src.execute("COMMIT")
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


def _warm_page_cache(source_fd: int) -> None:
    """Read the file into the page cache (the kernel discards the bytes) before the lock is
    taken, so that writers wait for a copy from memory rather than from disk. Only a file
    that fits in half the memory at hand would still be cached when the copy reads it."""
    size = os.fstat(source_fd).st_size
    if not fits_in_memory(size):
        return
    with open(os.devnull, "wb") as null:
        read = 0
        try:
            while read < size and (
                sent := os.sendfile(null.fileno(), source_fd, read, size - read)
            ):
                read += sent
        except OSError as exc:
            if exc.errno not in (errno.EINVAL, errno.ENOSYS):
                raise
            # No sendfile here: the copy reads the file itself, only more slowly.


def _copy_bytes(source_fd: int, target: Path, size: int, observer: CopyObserver) -> None:
    if not fits_in_memory(size) and _copy_uncached(source_fd, target, size):
        return  # not followed: hashed once the lock is released (CopyDigests.result)
    # Not "wb": on ext4, closing a file that was truncated to zero bytes writes it all out
    # to disk, 0.3 s per GB that writers would wait for; the scratch file is new and empty.
    with target.open("r+b") as out:
        observer.copy_started(target, size)
        try:
            copied = _copy_into(out, source_fd, size, observer.copied)
        finally:
            observer.copy_ended()
    if copied < size:
        raise OSError(errno.EIO, f"database file ended after {copied} of {size} bytes")


def _copy_uncached(source_fd: int, target: Path, size: int) -> bool:
    """Copy a file larger than the memory at hand past the page cache both ways (O_DIRECT):
    through the cache every page read or written first evicts another, and the hashing
    that follows a copy through the cache shares the task's 0.25 vCPU with it, so writers
    waited 4-5 s for 1 GB against 1 s this way (benchmarks/RESULTS.md, issue 15). False,
    with nothing copied, where the size or the file systems refuse O_DIRECT."""
    if not hasattr(os, "O_DIRECT") or size % DIRECT_ALIGNMENT:
        return False
    # The source's own descriptor: closing another one would drop SQLite's read lock.
    flags = fcntl.fcntl(source_fd, fcntl.F_GETFL)
    try:
        fcntl.fcntl(source_fd, fcntl.F_SETFL, flags | os.O_DIRECT)
        with contextlib.closing(aligned_buffer(_COPY_CHUNK)) as buffer:
            out = os.open(target, os.O_WRONLY | os.O_DIRECT)
            try:
                copied = _copy_blocks(source_fd, out, memoryview(buffer), size)
            finally:
                os.close(out)
    except OSError as exc:
        if exc.errno != errno.EINVAL:
            raise
        return False  # the copy through the cache starts again from the first byte
    finally:
        fcntl.fcntl(source_fd, fcntl.F_SETFL, flags)
    if copied < size:
        raise OSError(errno.EIO, f"database file ended after {copied} of {size} bytes")
    return True


def _copy_blocks(source_fd: int, out: int, buffer: memoryview, size: int) -> int:
    copied = 0
    try:
        while copied < size:
            wanted = min(len(buffer), size - copied)
            count = os.preadv(source_fd, [buffer[:wanted]], copied)
            if count < wanted:
                return copied + count  # where the file ends; the caller fails the copy
            written = 0
            while written < count:
                written += os.pwritev(out, [buffer[written:count]], copied + written)
            copied += count
    finally:
        buffer.release()
    return copied


def _copy_into(out: BinaryIO, source_fd: int, size: int, progress: Callable[[int], None]) -> int:
    """Copy by the kernel (sendfile), else by reads and writes; the bytes copied."""
    copied = 0
    try:
        while copied < size and (
            sent := os.sendfile(out.fileno(), source_fd, copied, min(_COPY_CHUNK, size - copied))
        ):
            copied += sent
            progress(copied)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOSYS) or copied:
            raise
        while chunk := os.pread(source_fd, min(_COPY_CHUNK, size - copied), copied):
            out.write(chunk)
            out.flush()
            copied += len(chunk)
            progress(copied)
    return copied


def _backup_pages(src: sqlite3.Connection, target: Path) -> None:
    dest = sqlite3.connect(target, isolation_level=None)
    try:
        # A scratch copy, discarded on any failure, needs neither a journal nor fsync.
        dest.execute("PRAGMA journal_mode = OFF")
        dest.execute("PRAGMA synchronous = OFF")
        src.backup(dest)
    finally:
        dest.close()


def read_database_facts(
    path: Path,
    busy_timeout_ms: int = 30_000,
    *,
    check_integrity: bool = True,
    mapped: bool = False,
    census: RowCensus | None = None,
) -> DatabaseFacts:
    """Integrity check (unless told not to), page layout, schema version and row counts;
    the counts taken from `census` where it has them (a pass over the file that read every
    page already), else by SQL; `mapped`: SQLite reads the file through a memory map (see
    `map_into_memory`), and counts each table's rows by a scan of the table itself
    (scanned_row_counts)."""
    try:
        conn = connect(path, readonly=True, busy_timeout_ms=busy_timeout_ms)
    except DatabaseError as exc:
        return DatabaseFacts(0, 0, sqlite3.sqlite_version, 0, None, {}, (str(exc),))
    try:
        if mapped:
            map_into_memory(conn, path)
        errors = integrity_errors(conn) if check_integrity else []
        if errors:
            return DatabaseFacts(0, 0, sqlite3.sqlite_version, 0, None, {}, tuple(errors))
        return DatabaseFacts(
            page_count=conn.execute("PRAGMA page_count").fetchone()[0],
            page_size=conn.execute("PRAGMA page_size").fetchone()[0],
            sqlite_version=sqlite3.sqlite_version,
            user_version=conn.execute("PRAGMA user_version").fetchone()[0],
            alembic_revision=alembic_revision(conn),
            row_counts=_row_counts(conn, census, mapped),
        )
    except sqlite3.DatabaseError as exc:
        return DatabaseFacts(0, 0, sqlite3.sqlite_version, 0, None, {}, (str(exc),))
    finally:
        conn.close()


def _row_counts(conn: sqlite3.Connection, census: RowCensus | None, mapped: bool) -> dict[str, int]:
    counted = census.row_counts(table_root_pages(conn)) if census is not None else None
    if counted is not None:
        return counted
    return scanned_row_counts(conn) if mapped else table_row_counts(conn)


def map_into_memory(conn: sqlite3.Connection, path: Path) -> None:
    """Let SQLite read `path` (opened read-only by `conn`) through a memory map instead of a
    read() per page. A scan of a file larger than the memory at hand (1 GB in the task's
    512 MB) then costs a third of the CPU: a page fault brings in the pages around it, and
    the kernel reclaims mapped pages in batches, where 4 KiB reads each evict a page
    first. The mapped pages count in the process's RSS but are the page cache's, clean and
    reclaimable: the cgroup's limit holds (benchmarks/RESULTS.md, backup-cost)."""
    conn.execute(f"PRAGMA mmap_size = {int(path.stat().st_size)}")


def scanned_row_counts(conn: sqlite3.Connection) -> dict[str, int]:
    """table_row_counts, each table counted by a scan of its own b-tree. SQLite counts
    through the smallest index otherwise, and the app's smallest indexes are on random keys
    (storage_key, public_id): their pages lie all over the file, so on a file larger than
    the memory at hand every few pages read is a miss. A table's pages were appended in
    rowid order: a scan reads runs of them."""
    return table_row_counts(conn, scan=True)


def quick_check_errors(conn: sqlite3.Connection, limit: int = 5) -> list[str]:
    """Problems `PRAGMA quick_check` reports; empty when the database is sound.

    It checks every page of every b-tree, the free list and every record's format, and
    skips only the matching of index entries against table rows (and UNIQUE), which makes
    it about half the cost of `integrity_check`. The backup runs it before anything is
    uploaded; the restore drill runs the full `integrity_check` on every backup."""
    return integrity_errors(conn, limit, pragma="quick_check")


class BackgroundIntegrityCheck:
    """`PRAGMA quick_check` of a snapshot in a thread, so that it runs while the parts
    upload (see quick_check_errors); started once the facts are read, never beside
    another pass over the file.

    A snapshot that fits in memory (`fits_in_memory`) is read through a memory map: a
    third of the CPU of a read per page (1 GB: 2.1 against 6.1 CPU s). A larger one is
    read through `prefetched_check`, which gathers each b-tree's pages in large reads
    ahead of the check: a map's read-around over a file larger than memory reads it
    twenty times over once the upload's buffers take 80 MB of the task's 512 MB, and a
    read per page costs 8.5-9 CPU s for 1 GB there (benchmarks/RESULTS.md, issue 15)."""

    def __init__(self, path: Path, busy_timeout_ms: int = 30_000) -> None:
        self._path = path
        self._busy_timeout_ms = busy_timeout_ms
        self._conn: sqlite3.Connection | apsw.Connection | None = None
        self._opened = threading.Event()
        # Until the check has said otherwise: a thread that dies half-way passes nothing.
        self._errors = ["the integrity check did not finish"]
        self._thread = threading.Thread(target=self._check, name="integrity-check", daemon=True)
        self._thread.start()

    def _check(self) -> None:
        try:
            if fits_in_memory(self._path.stat().st_size):
                self._conn = connect(
                    self._path,
                    readonly=True,
                    busy_timeout_ms=self._busy_timeout_ms,
                    check_same_thread=False,
                )
            else:
                self._conn = prefetched_check.open_for_check(self._path)
        except (DatabaseError, apsw.Error, OSError) as exc:
            self._errors = [str(exc)]
            return
        finally:
            self._opened.set()
        try:
            if isinstance(self._conn, sqlite3.Connection):
                map_into_memory(self._conn, self._path)
                self._errors = quick_check_errors(self._conn)
            else:
                self._errors = prefetched_check.quick_check_errors(self._conn)
        except (sqlite3.Error, apsw.Error, OSError) as exc:
            self._errors = [str(exc)]
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
            with contextlib.suppress(sqlite3.ProgrammingError, apsw.Error):
                self._conn.interrupt()
        self._thread.join()

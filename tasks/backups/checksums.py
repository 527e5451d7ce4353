"""One pass over a file's bytes: its SHA-256, and the S3 checksum of each upload part.

The SHA-256 goes into the backup's metadata, where restore and the drill check it. Each
part carries its CRC32C, which S3 verifies before it accepts the part, and S3 checksums the
object as the CRC32C of the parts' values (COMPOSITE). Each chunk is read once and fed to
both. CRC32C, one of S3's default CRC family, is computed in hardware by the `crc32c`
package: 0.07 CPU s per GB against 0.26 for zlib's CRC32, the aws CLI's default. Not
botocore's CRC32C or CRC64NVME: they need awscrt, whose import costs every process that
loads botocore ~80 ms of CPU and 6 MB (benchmarks/RESULTS.md, issue 15, 2026-12-03 night).
"""

from __future__ import annotations

import base64
import contextlib
import errno
import hashlib
import mmap
import os
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from crc32c import crc32c

from tasks.backups.memory import fits_in_memory
from tasks.backups.row_census import RowCensus

READ_CHUNK = 4 << 20
# O_DIRECT wants the buffer, the offset and the length aligned to the device's blocks.
DIRECT_ALIGNMENT = 4096


@dataclass(frozen=True)
class FileDigests:
    sha256: str
    size: int
    part_size: int
    part_crcs: tuple[int, ...]
    algorithm: ClassVar[str] = "CRC32C"
    checksum_type: ClassVar[str] = "COMPOSITE"

    @property
    def part_count(self) -> int:
        return len(self.part_crcs)

    def part_checksum(self, index: int) -> str:
        """Base64 checksum of part `index` (0-based), as S3's x-amz-checksum-* wants it."""
        return _encode(self.part_crcs[index])

    def object_checksum(self) -> str:
        """What S3 reports for the whole object: the CRC of the parts' checksums followed
        by '-N' parts."""
        joined = b"".join(crc.to_bytes(4, "big") for crc in self.part_crcs)
        return f"{_encode(crc32c(joined))}-{self.part_count}"


def _encode(crc: int) -> str:
    return base64.b64encode(crc.to_bytes(4, "big")).decode()


def part_size_for(size: int, wanted: int, max_parts: int = 10_000) -> int:
    """`wanted`, grown in 1 MiB steps when the file would need more parts than S3 allows."""
    if size <= wanted * max_parts:
        return wanted
    mib = 1 << 20
    needed = -(-size // max_parts)
    return -(-needed // mib) * mib


def _already_written(end: int) -> None:
    """A file at rest: every byte is there to be read."""


class DigestPass:
    """The one pass of `file_digests`, a chunk at a time, so that it can change threads (and
    descriptors, `fd`) on the way (CopyDigests): SHA-256 of the first `size` bytes of an
    open file and the part checksum of each `part_size` slice; an empty file is one part.
    An SQLite file's pages are counted on the way too (`census`)."""

    def __init__(self, fd: int, size: int, part_size: int) -> None:
        self.census = RowCensus()
        # The descriptor the next step reads, and whether it bypasses the page cache
        # (O_DIRECT, whose reads need an aligned buffer: see `read_uncached`).
        self.fd = fd
        self.uncached = False
        self._size = size
        self._part_size = part_size
        self._whole = hashlib.sha256()
        self._buffer = memoryview(bytearray(min(READ_CHUNK, max(size, 1))))
        self._offset = 0
        self._crc = 0
        self._crcs: list[int] = []

    @property
    def done(self) -> bool:
        return len(self._crcs) == max(-(-self._size // self._part_size), 1)

    def step(self, written: Callable[[int], None] = _already_written) -> None:
        """Hash the next chunk (never across a part's end); `written(end)` returns once the
        file holds its first `end` bytes. Positional reads: the descriptor's own position
        is left alone."""
        part_start = len(self._crcs) * self._part_size
        part_end = min(part_start + self._part_size, self._size)
        if self._offset < part_end:
            wanted = min(len(self._buffer), part_end - self._offset)
            written(self._offset + wanted)
            if self.uncached:
                count = _pread_direct(self.fd, self._buffer, wanted, self._offset)
            else:
                count = os.preadv(self.fd, [self._buffer[:wanted]], self._offset)
            if not count:
                raise OSError(f"file ended at byte {self._offset} of {self._size} while hashed")
            chunk = self._buffer[:count]
            self._whole.update(chunk)
            self._crc = crc32c(chunk, self._crc)
            self.census.feed(self._offset, chunk)
            self._offset += count
        if self._offset >= part_end:
            self._end_part()

    @contextlib.contextmanager
    def reading(self, path: Path) -> Iterator[None]:
        """The steps in this block read `path` (the file hashed), past the page cache where
        that pays and the file system and the part size allow it (see `uncached_fd`)."""
        fd = uncached_fd(path) if self._part_size % DIRECT_ALIGNMENT == 0 else None
        if fd is None:
            with path.open("rb", buffering=0) as handle:
                self.fd = handle.fileno()
                yield
            return
        buffer = aligned_buffer(len(self._buffer))
        saved, view = self._buffer, memoryview(buffer)
        self.fd, self.uncached, self._buffer = fd, True, view
        try:
            yield
        finally:
            self.uncached, self._buffer = False, saved
            view.release()
            buffer.close()
            os.close(fd)

    def _end_part(self) -> None:
        self._crcs.append(self._crc)
        self._crc = 0

    def digests(self) -> FileDigests:
        assert self.done, "digests asked before the pass ended"
        return FileDigests(self._whole.hexdigest(), self._size, self._part_size, tuple(self._crcs))


def uncached_fd(path: Path) -> int | None:
    """A descriptor reading `path` past the page cache (O_DIRECT) where that pays, else None.

    It pays for a file larger than the memory at hand (the task's cgroup): such a copy is
    no longer cached when it is read again, and read through the cache every page would
    first evict another, which costs several times the CPU of the read itself. A file that
    fits (`fits_in_memory`) is still cached, and O_DIRECT would first write its dirty pages
    out to disk and then read them back: 1.4 CPU s more for a 1 GB backup
    (benchmarks/RESULTS.md, issue 15, 2026-12-04). None as well where the file system
    refuses O_DIRECT (tmpfs)."""
    if not hasattr(os, "O_DIRECT") or fits_in_memory(path.stat().st_size):
        return None
    try:
        return os.open(path, os.O_RDONLY | os.O_DIRECT)
    except OSError as exc:
        if exc.errno == errno.EINVAL:
            return None
        raise


def aligned_buffer(size: int) -> mmap.mmap:
    """A page-aligned buffer of at least `size` bytes, as O_DIRECT reads need."""
    return mmap.mmap(-1, max(-(-size // DIRECT_ALIGNMENT) * DIRECT_ALIGNMENT, 1))


def _pread_direct(fd: int, buffer: memoryview, wanted: int, offset: int) -> int:
    """Read `wanted` bytes at `offset` through O_DIRECT: the length read is rounded up to
    the alignment (a file's last block reads short), the bytes past `wanted` ignored."""
    length = min(-(-wanted // DIRECT_ALIGNMENT) * DIRECT_ALIGNMENT, len(buffer))
    return min(os.preadv(fd, [buffer[:length]], offset), wanted)


def file_digests(fd: int, size: int, part_size: int) -> FileDigests:
    """SHA-256 of the first `size` bytes of an open file and the part checksum of each
    `part_size` slice of them, every byte read once."""
    digest = DigestPass(fd, size, part_size)
    while not digest.done:
        digest.step()
    return digest.digests()


def path_digests(path: Path, wanted_part_size: int) -> FileDigests:
    """`file_digests` of a whole file, in parts of `wanted_part_size` (grown if needed)."""
    with path.open("rb", buffering=0) as handle:
        size = os.fstat(handle.fileno()).st_size
        return file_digests(handle.fileno(), size, part_size_for(size, wanted_part_size))


def file_sha256(path: Path) -> str:
    with path.open("rb", buffering=0) as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


class CopyDigests:
    """The FileDigests of a file hashed while it is being copied (tasks.backups.snapshot calls the
    copy_* methods): the hashing reads only bytes already written, at a lower priority
    while the copy runs, so that the copy, which holds the database's read lock, keeps its
    core and the app's writers wait no longer; what is left once the copy is whole is
    hashed by `result()` at its caller's priority (a niced thread cannot be raised again,
    and on a busy host it would crawl), read past the page cache if the copy is larger than
    the task's memory: it has left the cache by then (`uncached_fd`)."""

    def __init__(self, wanted_part_size: int) -> None:
        self._wanted_part_size = wanted_part_size
        self._progress = threading.Condition()
        self._size = 0
        self._written = 0
        self._ended = False
        self._thread: threading.Thread | None = None
        self._pass: DigestPass | None = None
        self._error: BaseException | None = None

    def copy_started(self, path: Path, size: int) -> None:
        self._size = size
        fd = os.open(path, os.O_RDONLY)
        self._pass = DigestPass(fd, size, part_size_for(size, self._wanted_part_size))
        self._thread = threading.Thread(
            target=self._hash, args=(fd,), name="copy-sha256", daemon=True
        )
        self._thread.start()

    def copied(self, count: int) -> None:
        with self._progress:
            self._written = count
            self._progress.notify_all()

    def copy_ended(self) -> None:
        """The copy is over, done or not: what was not written will not be."""
        with self._progress:
            self._ended = True
            self._progress.notify_all()

    def result(self, path: Path) -> FileDigests:
        """The digests of the copy `path`; hashed now if the copy was not followed (a WAL
        database is copied page by page by SQLite's backup API, a large one past the page
        cache)."""
        if self._thread is None or self._pass is None:
            size = path.stat().st_size
            part_size = part_size_for(size, self._wanted_part_size)
            self._pass = DigestPass(-1, size, part_size)  # `reading` opens the file
        else:
            self._thread.join()
            if self._error is not None:
                raise OSError(f"hashing {path} failed: {self._error}") from self._error
        if not self._pass.done:
            with self._pass.reading(path):
                try:
                    while not self._pass.done:
                        self._pass.step()
                except OSError as exc:
                    raise OSError(f"hashing {path} failed: {exc}") from exc
        return self._pass.digests()

    @property
    def census(self) -> RowCensus | None:
        """The rows of the copy's tables, counted as it was hashed; None before `result`
        if the copy was not followed."""
        return self._pass.census if self._pass is not None else None

    def _hash(self, fd: int) -> None:
        assert self._pass is not None
        if sys.platform == "linux":  # per thread there
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
        try:
            # A copy that ended short is hashed on until the read past its end fails.
            while not self._pass.done and not (self._ended and self._written >= self._size):
                self._pass.step(self._wait_for)
        except BaseException as exc:
            self._error = exc
        finally:
            os.close(fd)

    def _wait_for(self, end: int) -> None:
        with self._progress:
            self._progress.wait_for(lambda: self._written >= end or self._ended)

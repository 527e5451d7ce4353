"""One pass over a file's bytes: its SHA-256, and the S3 checksum of each upload part.

The SHA-256 goes into the backup's metadata, where restore and the drill check it. The
part checksums are of S3's CRC family, which S3 verifies on every part and combines into
the object's own checksum: CRC64NVME (hardware-accelerated, by awscrt, the `crt` extra of
botocore) where awscrt is installed, else CRC32 (zlib). Each chunk is read once and fed to
both; a CRC costs a fraction of a SHA-256.
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
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

READ_CHUNK = 4 << 20
# O_DIRECT wants the buffer, the offset and the length aligned to the device's blocks.
_DIRECT_ALIGNMENT = 4096


@dataclass(frozen=True)
class PartChecksum:
    """An S3 checksum algorithm: how a chunk updates it and, where the library can, how the
    values of two adjacent ranges combine into the value of both (S3's FULL_OBJECT type)."""

    algorithm: str
    width: int
    update: Callable[[memoryview, int], int]
    combine: Callable[[int, int, int], int] | None = None


CRC32 = PartChecksum("CRC32", 4, zlib.crc32)


def crc64nvme() -> PartChecksum | None:
    """CRC64NVME by awscrt, where it is installed."""
    try:
        from awscrt import checksums
    except ImportError:
        return None
    return PartChecksum("CRC64NVME", 8, checksums.crc64nvme, checksums.combine_crc64nvme)


def part_checksum() -> PartChecksum:
    """The part checksum backups use: CRC64NVME where awscrt is installed, else CRC32."""
    return crc64nvme() or CRC32


@dataclass(frozen=True)
class FileDigests:
    sha256: str
    size: int
    part_size: int
    algorithm: str
    part_crcs: tuple[int, ...]
    # The whole file's CRC (S3's FULL_OBJECT checksum) where the parts' values combine.
    object_crc: int | None = None

    @property
    def part_count(self) -> int:
        return len(self.part_crcs)

    @property
    def checksum_type(self) -> str:
        return "COMPOSITE" if self.object_crc is None else "FULL_OBJECT"

    def part_checksum(self, index: int) -> str:
        """Base64 checksum of part `index` (0-based), as S3's x-amz-checksum-* wants it."""
        return self._encode(self.part_crcs[index])

    def object_checksum(self) -> str:
        """What S3 reports for the whole object: the file's CRC (FULL_OBJECT), or the CRC of
        the parts' checksums followed by '-N' parts (COMPOSITE)."""
        if self.object_crc is not None:
            return self._encode(self.object_crc)
        width = _WIDTHS[self.algorithm]
        joined = b"".join(crc.to_bytes(width, "big") for crc in self.part_crcs)
        return f"{self._encode(zlib.crc32(joined))}-{self.part_count}"

    def _encode(self, crc: int) -> str:
        return base64.b64encode(crc.to_bytes(_WIDTHS[self.algorithm], "big")).decode()


_WIDTHS = {"CRC32": 4, "CRC32C": 4, "CRC64NVME": 8}


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
    open file and the part checksum of each `part_size` slice; an empty file is one part."""

    def __init__(
        self, fd: int, size: int, part_size: int, checksum: PartChecksum | None = None
    ) -> None:
        # The descriptor the next step reads, and whether it bypasses the page cache
        # (O_DIRECT, whose reads need an aligned buffer: see `read_uncached`).
        self.fd = fd
        self.uncached = False
        self._size = size
        self._part_size = part_size
        self._checksum = checksum or part_checksum()
        self._whole = hashlib.sha256()
        self._buffer = memoryview(bytearray(min(READ_CHUNK, max(size, 1))))
        self._offset = 0
        self._crc = 0
        self._crcs: list[int] = []
        self._object_crc: int | None = None

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
            self._crc = self._checksum.update(chunk, self._crc)
            self._offset += count
        if self._offset >= part_end:
            self._end_part(part_end - part_start)

    @contextlib.contextmanager
    def reading(self, path: Path) -> Iterator[None]:
        """The steps in this block read `path` (the file hashed), past the page cache where
        the file system and the part size allow it (see `uncached_fd`)."""
        fd = uncached_fd(path) if self._part_size % _DIRECT_ALIGNMENT == 0 else None
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

    def _end_part(self, length: int) -> None:
        crc, self._crc = self._crc, 0
        self._crcs.append(crc)
        if self._checksum.combine is not None:
            self._object_crc = (
                crc
                if self._object_crc is None
                else self._checksum.combine(self._object_crc, crc, length)
            )

    def digests(self) -> FileDigests:
        assert self.done, "digests asked before the pass ended"
        return FileDigests(
            self._whole.hexdigest(),
            self._size,
            self._part_size,
            self._checksum.algorithm,
            tuple(self._crcs),
            self._object_crc,
        )


def uncached_fd(path: Path) -> int | None:
    """A descriptor reading `path` past the page cache (O_DIRECT), or None where the file
    system refuses it (tmpfs). A copy larger than the memory at hand (the task's cgroup)
    is no longer cached when it is read again: read through the cache, every page would
    first evict another, which costs several times the CPU of the read itself."""
    if not hasattr(os, "O_DIRECT"):
        return None
    try:
        return os.open(path, os.O_RDONLY | os.O_DIRECT)
    except OSError as exc:
        if exc.errno == errno.EINVAL:
            return None
        raise


def aligned_buffer(size: int) -> mmap.mmap:
    """A page-aligned buffer of at least `size` bytes, as O_DIRECT reads need."""
    return mmap.mmap(-1, max(-(-size // _DIRECT_ALIGNMENT) * _DIRECT_ALIGNMENT, 1))


def _pread_direct(fd: int, buffer: memoryview, wanted: int, offset: int) -> int:
    """Read `wanted` bytes at `offset` through O_DIRECT: the length read is rounded up to
    the alignment (a file's last block reads short), the bytes past `wanted` ignored."""
    length = min(-(-wanted // _DIRECT_ALIGNMENT) * _DIRECT_ALIGNMENT, len(buffer))
    return min(os.preadv(fd, [buffer[:length]], offset), wanted)


def file_digests(
    fd: int, size: int, part_size: int, checksum: PartChecksum | None = None
) -> FileDigests:
    """SHA-256 of the first `size` bytes of an open file and the part checksum of each
    `part_size` slice of them, every byte read once."""
    digest = DigestPass(fd, size, part_size, checksum)
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
    and on a busy host it would crawl), read past the page cache (`uncached_fd`): a copy
    larger than the task's memory has left it by then."""

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
        database is copied page by page by SQLite's backup API)."""
        if self._thread is None or self._pass is None:
            return path_digests(path, self._wanted_part_size)
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

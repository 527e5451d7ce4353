"""SHA-256 of a file, of its upload parts, and S3's composite checksum of those parts."""

from __future__ import annotations

import base64
import hashlib
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

READ_CHUNK = 4 << 20


@dataclass(frozen=True)
class FileDigests:
    sha256: str
    size: int
    part_size: int
    part_sha256: tuple[bytes, ...]

    @property
    def part_count(self) -> int:
        return len(self.part_sha256)

    def part_checksum(self, index: int) -> str:
        """Base64 SHA-256 of part `index` (0-based), as S3's x-amz-checksum-sha256 wants it."""
        return base64.b64encode(self.part_sha256[index]).decode()

    def composite_checksum(self) -> str:
        """S3's checksum of a multipart object: SHA-256 of the part digests, '-N' parts."""
        combined = hashlib.sha256(b"".join(self.part_sha256)).digest()
        return f"{base64.b64encode(combined).decode()}-{self.part_count}"


def part_size_for(size: int, wanted: int, max_parts: int = 10_000) -> int:
    """`wanted`, grown in 1 MiB steps when the file would need more parts than S3 allows."""
    if size <= wanted * max_parts:
        return wanted
    mib = 1 << 20
    needed = -(-size // max_parts)
    return -(-needed // mib) * mib


def _already_written(end: int) -> None:
    """A file at rest: every byte is there to be read."""


def file_digests(
    fd: int, size: int, part_size: int, written: Callable[[int], None] = _already_written
) -> FileDigests:
    """SHA-256 of the first `size` bytes of an open file and of each `part_size` slice of
    them, side by side in two threads (hashlib releases the GIL); an empty file is one
    empty part. `written(end)` returns once the file holds its first `end` bytes."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="part-sha256") as pool:
        parts = pool.submit(_part_digests, fd, size, part_size, written)
        whole = descriptor_sha256(fd, 0, size, written=written)
        return FileDigests(whole.hex(), size, part_size, parts.result())


def path_digests(path: Path, wanted_part_size: int) -> FileDigests:
    """`file_digests` of a whole file, in parts of `wanted_part_size` (grown if needed)."""
    with path.open("rb", buffering=0) as handle:
        size = os.fstat(handle.fileno()).st_size
        return file_digests(handle.fileno(), size, part_size_for(size, wanted_part_size))


def _part_digests(
    fd: int, size: int, part_size: int, written: Callable[[int], None]
) -> tuple[bytes, ...]:
    buffer = _read_buffer(part_size)
    return tuple(
        descriptor_sha256(fd, offset, min(part_size, size - offset), buffer, written)
        for offset in range(0, max(size, 1), part_size)
    )


def file_sha256(path: Path) -> str:
    with path.open("rb", buffering=0) as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def descriptor_sha256(
    fd: int,
    offset: int,
    length: int,
    buffer: memoryview | None = None,
    written: Callable[[int], None] = _already_written,
) -> bytes:
    """SHA-256 of `length` bytes from `offset` of an open file, read with positional reads
    (the descriptor's own position is left alone) into `buffer`, reused across calls."""
    buffer = buffer if buffer is not None else _read_buffer(length)
    digest = hashlib.sha256()
    end = offset + length
    while offset < end:
        wanted = min(len(buffer), end - offset)
        written(offset + wanted)
        count = os.preadv(fd, [buffer[:wanted]], offset)
        if not count:
            raise OSError(f"file ended at byte {offset} of {end} while it was hashed")
        digest.update(buffer[:count])
        offset += count
    return digest.digest()


def _read_buffer(length: int) -> memoryview:
    return memoryview(bytearray(min(READ_CHUNK, max(length, 1))))


class CopyDigests:
    """The FileDigests of a file hashed while it is being copied (tasks.snapshot calls the
    copy_* methods): the hashing reads only bytes already written, so it ends soon after
    the copy, and runs at a lower priority, so that the copy, which holds the database's
    read lock, keeps its core and the app's writers wait no longer."""

    def __init__(self, wanted_part_size: int) -> None:
        self._wanted_part_size = wanted_part_size
        self._progress = threading.Condition()
        self._written = 0
        self._ended = False
        self._thread: threading.Thread | None = None
        self._digests: FileDigests | None = None
        self._error: BaseException | None = None

    def copy_started(self, path: Path, size: int) -> None:
        fd = os.open(path, os.O_RDONLY)
        self._thread = threading.Thread(
            target=self._hash, args=(fd, size), name="copy-sha256", daemon=True
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
        if self._thread is None:
            return path_digests(path, self._wanted_part_size)
        self._thread.join()
        if self._digests is None:
            raise OSError(f"hashing {path} failed: {self._error}") from self._error
        return self._digests

    def _hash(self, fd: int, size: int) -> None:
        if sys.platform == "linux":  # per thread there; inherited by the part thread
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
        try:
            part_size = part_size_for(size, self._wanted_part_size)
            self._digests = file_digests(fd, size, part_size, self._wait_for)
        except BaseException as exc:
            self._error = exc
        finally:
            os.close(fd)

    def _wait_for(self, end: int) -> None:
        with self._progress:
            self._progress.wait_for(lambda: self._written >= end or self._ended)

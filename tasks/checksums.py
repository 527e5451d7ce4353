"""SHA-256 of a file, of its upload parts, and S3's composite checksum of those parts."""

from __future__ import annotations

import base64
import hashlib
import os
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


def file_digests(fd: int, size: int, part_size: int) -> FileDigests:
    """SHA-256 of the first `size` bytes of an open file and of each `part_size` slice of
    them, side by side in two threads (hashlib releases the GIL); an empty file is one
    empty part."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="part-sha256") as pool:
        parts = pool.submit(_part_digests, fd, size, part_size)
        whole = descriptor_sha256(fd, 0, size)
        return FileDigests(whole.hex(), size, part_size, parts.result())


def path_digests(path: Path, wanted_part_size: int) -> FileDigests:
    """`file_digests` of a whole file, in parts of `wanted_part_size` (grown if needed)."""
    with path.open("rb", buffering=0) as handle:
        size = os.fstat(handle.fileno()).st_size
        return file_digests(handle.fileno(), size, part_size_for(size, wanted_part_size))


def _part_digests(fd: int, size: int, part_size: int) -> tuple[bytes, ...]:
    buffer = _read_buffer(part_size)
    return tuple(
        descriptor_sha256(fd, offset, min(part_size, size - offset), buffer)
        for offset in range(0, max(size, 1), part_size)
    )


def file_sha256(path: Path) -> str:
    with path.open("rb", buffering=0) as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def descriptor_sha256(fd: int, offset: int, length: int, buffer: memoryview | None = None) -> bytes:
    """SHA-256 of `length` bytes from `offset` of an open file, read with positional reads
    (the descriptor's own position is left alone) into `buffer`, reused across calls."""
    buffer = buffer if buffer is not None else _read_buffer(length)
    digest = hashlib.sha256()
    end = offset + length
    while offset < end:
        count = os.preadv(fd, [buffer[: min(len(buffer), end - offset)]], offset)
        if not count:
            raise OSError(f"file ended at byte {offset} of {end} while it was hashed")
        digest.update(buffer[:count])
        offset += count
    return digest.digest()


def _read_buffer(length: int) -> memoryview:
    return memoryview(bytearray(min(READ_CHUNK, max(length, 1))))

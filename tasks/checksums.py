"""SHA-256 of a file, of its upload parts, and S3's composite checksum of those parts."""

from __future__ import annotations

import base64
import hashlib
import os
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


def part_count_for(size: int, part_size: int) -> int:
    """Parts of `part_size` bytes (the last one shorter) holding `size`; an empty file is one."""
    return max(1, -(-size // part_size))


def file_sha256(path: Path) -> str:
    with path.open("rb", buffering=0) as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def range_sha256(path: Path, offset: int, length: int) -> bytes:
    """SHA-256 of `length` bytes of `path` from `offset`."""
    with path.open("rb", buffering=0) as handle:
        return descriptor_sha256(handle.fileno(), offset, length)


def descriptor_sha256(fd: int, offset: int, length: int) -> bytes:
    """SHA-256 of `length` bytes from `offset` of an open file, read with positional reads
    into one reused buffer (the descriptor's own position is left alone)."""
    digest = hashlib.sha256()
    buffer = memoryview(bytearray(min(READ_CHUNK, max(length, 1))))
    end = offset + length
    while offset < end:
        count = os.preadv(fd, [buffer[: min(len(buffer), end - offset)]], offset)
        if not count:
            raise OSError(f"file ended at byte {offset} of {end} while it was hashed")
        digest.update(buffer[:count])
        offset += count
    return digest.digest()


def part_checksum(digest: bytes) -> str:
    """A part's SHA-256 as S3's x-amz-checksum-sha256 wants it (base64)."""
    return base64.b64encode(digest).decode()

"""SHA-256 of a whole file and of its upload parts, in one streaming pass."""

from __future__ import annotations

import base64
import hashlib
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


def file_digests(path: Path, part_size: int) -> FileDigests:
    """Hash `path` once: the whole file and each `part_size` slice; constant memory."""
    whole = hashlib.sha256()
    parts: list[bytes] = []
    part = hashlib.sha256()
    in_part = 0
    size = 0
    buffer = bytearray(min(READ_CHUNK, part_size))
    view = memoryview(buffer)
    with path.open("rb", buffering=0) as handle:
        while True:
            wanted = min(len(buffer), part_size - in_part)
            count = handle.readinto(view[:wanted])
            if not count:
                break
            chunk = view[:count]
            whole.update(chunk)
            part.update(chunk)
            in_part += count
            size += count
            if in_part == part_size:
                parts.append(part.digest())
                part, in_part = hashlib.sha256(), 0
    if in_part or not parts:
        parts.append(part.digest())
    return FileDigests(whole.hexdigest(), size, part_size, tuple(parts))

"""What each backup object carries about itself in S3 user metadata (ARCHITECTURE §4, contract);
its key and the requests about it are tasks.backups.store's."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

from opsd.results import TaskError

# S3 allows 2 KB of user metadata (keys plus values) per object.
METADATA_LIMIT_BYTES = 2048
REASONS = ("scheduled", "manual", "pre-migration")


@dataclass(frozen=True)
class BackupMetadata:
    """What each backup object carries about itself; the restore drill checks all of it."""

    sha256: str
    size: int
    page_count: int
    page_size: int
    sqlite_version: str
    user_version: int
    alembic_revision: str | None
    row_counts: dict[str, int] = field(default_factory=dict)
    reason: str = "scheduled"
    host: str = ""
    taken_at: str = ""

    def to_s3(self) -> dict[str, str]:
        """S3 user metadata (sent as x-amz-meta-*): lowercase keys, short ASCII values."""
        values = asdict(self)
        values["row_counts"] = json.dumps(self.row_counts, separators=(",", ":"), sort_keys=True)
        values["alembic_revision"] = self.alembic_revision or ""
        encoded = {name.replace("_", "-"): str(value) for name, value in values.items()}
        size = sum(len(k.encode()) + len(v.encode()) for k, v in encoded.items())
        if size > METADATA_LIMIT_BYTES:
            raise TaskError(
                f"backup metadata is {size} bytes, over S3's {METADATA_LIMIT_BYTES}-byte limit "
                f"({len(self.row_counts)} tables)"
            )
        if not all(v.isascii() for v in encoded.values()):
            raise TaskError("backup metadata: values must be ASCII (S3 user metadata)")
        return encoded

    @classmethod
    def from_s3(cls, key: str, metadata: Mapping[str, str]) -> BackupMetadata:
        """Decode a HEAD/GET response's Metadata; a missing or bad field is a TaskError."""
        try:
            row_counts = json.loads(metadata["row-counts"])
            if not isinstance(row_counts, dict):
                raise ValueError("row-counts is not an object")
            return cls(
                sha256=_hex_digest(metadata["sha256"]),
                size=int(metadata["size"]),
                page_count=int(metadata["page-count"]),
                page_size=int(metadata["page-size"]),
                sqlite_version=metadata["sqlite-version"],
                user_version=int(metadata["user-version"]),
                alembic_revision=metadata.get("alembic-revision") or None,
                row_counts={str(k): int(v) for k, v in row_counts.items()},
                reason=metadata.get("reason", ""),
                host=metadata.get("host", ""),
                taken_at=metadata.get("taken-at", ""),
            )
        except KeyError as exc:
            raise TaskError(f"{key}: backup metadata lacks {exc.args[0]}") from None
        except ValueError as exc:
            raise TaskError(f"{key}: backup metadata is invalid ({exc})") from None


def _hex_digest(value: str) -> str:
    if not re.fullmatch(r"[0-9a-f]{64}", value):
        raise ValueError(f"sha256 {value!r} is not a hex SHA-256 digest")
    return value

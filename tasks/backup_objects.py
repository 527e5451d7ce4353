"""Backup objects in S3 (ARCHITECTURE §4, contract): key naming, listing, and their metadata."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from opsd.aws import describe_aws_error, error_code
from opsd.results import TaskError

KEY_TIME_FORMAT = "%Y-%m-%d-%H-%M"
_KEY_NAME = re.compile(r"^backup-(\d{4}-\d{2}-\d{2}-\d{2}-\d{2})\.db$")
# S3 allows 2 KB of user metadata (keys plus values) per object.
METADATA_LIMIT_BYTES = 2048
REASONS = ("scheduled", "manual", "pre-migration")


def normalise_prefix(prefix: str) -> str:
    """'' stays ''; 'db' and 'db/' both become 'db/'."""
    prefix = prefix.strip("/")
    return f"{prefix}/" if prefix else ""


def backup_key(taken_at: datetime, prefix: str = "") -> str:
    minute = taken_at.astimezone(UTC).strftime(KEY_TIME_FORMAT)
    return f"{normalise_prefix(prefix)}backup-{minute}.db"


def key_time(key: str) -> datetime | None:
    """The UTC minute a backup key names, or None when the key is not a backup's."""
    match = _KEY_NAME.match(key.rsplit("/", 1)[-1])
    if not match:
        return None
    return datetime.strptime(match.group(1), KEY_TIME_FORMAT).replace(tzinfo=UTC)


@dataclass(frozen=True)
class BackupObject:
    key: str
    taken_at: datetime
    size: int
    storage_class: str = "STANDARD"
    last_modified: datetime | None = None


def list_backups(s3: Any, bucket: str, prefix: str = "") -> list[BackupObject]:
    """Every backup object under the prefix, newest first."""
    prefix = normalise_prefix(prefix)
    found: list[BackupObject] = []
    try:
        pages = s3.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=f"{prefix}backup-"
        )
        for page in pages:
            for item in page.get("Contents", ()):
                name = item["Key"][len(prefix) :]
                taken_at = None if "/" in name else key_time(name)
                if taken_at is None:
                    continue
                found.append(
                    BackupObject(
                        item["Key"],
                        taken_at,
                        item["Size"],
                        item.get("StorageClass", "STANDARD"),
                        item.get("LastModified"),
                    )
                )
    except Exception as exc:
        raise TaskError(describe_aws_error(f"list backups in s3://{bucket}/{prefix}", exc)) from exc
    return sorted(found, key=lambda obj: obj.taken_at, reverse=True)


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


def head_backup(s3: Any, bucket: str, key: str) -> dict[str, Any] | None:
    """The HEAD response of a backup object, or None when there is no such key."""
    try:
        return s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")  # type: ignore[no-any-return]
    except Exception as exc:
        if error_code(exc) in ("404", "NoSuchKey", "NotFound"):
            return None
        raise TaskError(describe_aws_error(f"look up s3://{bucket}/{key}", exc)) from exc

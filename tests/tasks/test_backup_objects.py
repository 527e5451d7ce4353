from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from crc32c import crc32c

from opsd.results import TaskError, UsageError
from tasks.backups.checksums import file_digests, part_size_for
from tasks.backups.objects import BackupMetadata
from tasks.backups.selection import parse_timestamp, select_backup
from tasks.backups.store import BackupObject

METADATA = BackupMetadata(
    sha256="ab" * 32,
    size=8192,
    page_count=2,
    page_size=4096,
    sqlite_version="3.40.1",
    user_version=3,
    alembic_revision="0003_scores",
    row_counts={"analyses": 12, "drawings": 10},
    reason="pre-migration",
    host="ip-10-0-0-1",
    taken_at="2026-11-24T06:00:00+00:00",
)


def test_metadata_round_trips_through_s3_user_metadata() -> None:
    encoded = METADATA.to_s3()
    assert all(k == k.lower() and "_" not in k for k in encoded)
    assert encoded["row-counts"] == '{"analyses":12,"drawings":10}'
    assert BackupMetadata.from_s3("k", encoded) == METADATA


def test_metadata_over_the_s3_limit_fails_clearly() -> None:
    many = BackupMetadata(
        **{**METADATA.__dict__, "row_counts": {f"t{i:03}": i for i in range(200)}}
    )
    with pytest.raises(TaskError, match="over S3's 2048-byte limit \\(200 tables\\)"):
        many.to_s3()


def test_metadata_missing_or_invalid_is_reported_by_field() -> None:
    encoded = METADATA.to_s3()
    del encoded["sha256"]
    with pytest.raises(TaskError, match="k: backup metadata lacks sha256"):
        BackupMetadata.from_s3("k", encoded)
    with pytest.raises(TaskError, match="invalid"):
        BackupMetadata.from_s3("k", {**METADATA.to_s3(), "page-count": "many"})


@pytest.mark.parametrize(
    ("size", "parts"), [(12_800_000, 3), (10 << 20, 2), ((10 << 20) + 1, 3), (1, 1), (0, 1)]
)
def test_digests_cover_the_whole_file_and_each_part(tmp_path: Path, size: int, parts: int) -> None:
    data = (bytes(range(256)) * (size // 256 + 1))[:size]
    path = tmp_path / "f"
    path.write_bytes(data + b"beyond the size hashed")
    part = 5 << 20
    with path.open("rb") as handle:
        digests = file_digests(handle.fileno(), size, part)
    assert digests.sha256 == hashlib.sha256(data).hexdigest()
    assert digests.size == size
    assert digests.part_count == parts
    expected = [crc32c(data[i : i + part]) for i in range(0, size or 1, part)]
    assert list(digests.part_crcs) == expected
    assert digests.part_checksum(0) == base64.b64encode(expected[0].to_bytes(4, "big")).decode()
    assert digests.object_checksum().endswith(f"-{parts}")


def test_hashing_beyond_the_end_of_the_file_fails(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x" * 100)
    with path.open("rb") as handle, pytest.raises(OSError, match="at byte 100 of 150"):
        file_digests(handle.fileno(), 150, 5 << 20)


def test_part_size_grows_only_beyond_ten_thousand_parts() -> None:
    assert part_size_for(1 << 30, 32 << 20) == 32 << 20
    grown = part_size_for(500 << 30, 5 << 20)
    assert grown * 10_000 >= 500 << 30 and grown % (1 << 20) == 0


def _backups(*minutes: str) -> list[BackupObject]:
    objects = [
        BackupObject(
            f"backup-{m}.db", datetime.strptime(m, "%Y-%m-%d-%H-%M").replace(tzinfo=UTC), 1
        )
        for m in minutes
    ]
    return sorted(objects, key=lambda b: b.taken_at, reverse=True)


def test_selection_latest_at_and_key() -> None:
    backups = _backups("2026-11-24-00-00", "2026-11-24-06-00", "2026-11-24-12-00")
    assert select_backup(backups).key == "backup-2026-11-24-12-00.db"
    at = parse_timestamp("2026-11-24 06:00")
    assert select_backup(backups, at=at).key == "backup-2026-11-24-06-00.db"
    assert select_backup(backups, key="backup-2026-11-24-00-00.db").taken_at.hour == 0


def test_selection_before_the_first_backup_names_the_earliest() -> None:
    backups = _backups("2026-11-24-00-00", "2026-11-24-06-00")
    with pytest.raises(TaskError) as caught:
        select_backup(backups, at=parse_timestamp("2026-01-01T00:00:00Z"))
    assert str(caught.value) == (
        "no backup at or before 2026-01-01 00:00 UTC; "
        "the earliest are backup-2026-11-24-00-00.db, backup-2026-11-24-06-00.db"
    )
    with pytest.raises(TaskError, match="no backups to restore from"):
        select_backup([])


def test_timestamps_without_zone_are_utc_and_garbage_is_a_usage_error() -> None:
    assert parse_timestamp("2026-11-24 06:00") == datetime(2026, 11, 24, 6, 0, tzinfo=UTC)
    assert parse_timestamp("2026-11-24T08:00+02:00") == datetime(2026, 11, 24, 6, 0, tzinfo=UTC)
    with pytest.raises(UsageError, match="not a timestamp"):
        parse_timestamp("last tuesday")


def test_selection_before_a_single_backup_names_it_in_the_singular() -> None:
    with pytest.raises(TaskError) as caught:
        select_backup(_backups("2026-11-24-00-00"), at=parse_timestamp("2026-01-01T00:00:00Z"))
    assert str(caught.value).endswith("; the earliest is backup-2026-11-24-00-00.db")

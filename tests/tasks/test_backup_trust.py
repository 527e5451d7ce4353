"""What --latest restores is a backup we took (issue 12.8); the backup age is the snapshot's
own time (issue 19.5)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from opsd.results import Status
from opsd.settings import Settings
from opsd.state import utcnow
from tasks.backups.store import BackupStore, key_time
from tests.tasks.backup_helpers import plant_backup, run_task


def newest_backup(s3: Any, settings: Settings, now: datetime) -> tuple[str, datetime | None] | None:
    """What BackupAgeSeconds is measured from: (key, recorded time) of the newest backup."""
    newest, _ = BackupStore.for_settings(settings, s3).newest(now)
    return None if newest is None else (newest.key, newest.recorded_at)


FUTURE = "backup-2099-01-01-00-00.db"


def _our_backup(make_ctx: Any, settings: Settings) -> tuple[str, dict[str, str], Any]:
    result = run_task(make_ctx("backup"))
    assert result.status is Status.OK, result.message
    s3 = make_ctx("restore").clients("s3")
    key = result.details["key"]
    head = s3.head_object(Bucket=settings.s3_bucket_backups, Key=key)
    return key, head["Metadata"], s3


def _copy(s3: Any, bucket: str, source: str, key: str, **metadata: str) -> None:
    """A copy of a real backup (its bytes and metadata) under another key: what someone
    with write access to the bucket can plant."""
    head = s3.head_object(Bucket=bucket, Key=source)
    s3.copy_object(
        Bucket=bucket,
        Key=key,
        CopySource={"Bucket": bucket, "Key": source},
        ChecksumAlgorithm="SHA256",
        MetadataDirective="REPLACE",
        Metadata={**head["Metadata"], **metadata},
    )


def _listed(make_ctx: Any) -> dict[str, str | None]:
    result = run_task(make_ctx("restore"), list=True, json=True)
    return {row["key"]: row["suspect"] for row in json.loads(result.output or "[]")}


def test_future_dated_object_is_suspect_and_latest_restores_our_backup(
    make_ctx: Any, app_db: Path, settings: Settings, tmp_path: Path
) -> None:
    ours, _, s3 = _our_backup(make_ctx, settings)
    _copy(s3, settings.s3_bucket_backups, ours, FUTURE)

    restored = run_task(make_ctx("restore"), to=tmp_path / "latest.db")

    assert restored.status is Status.OK, restored.message
    assert restored.details["key"] == ours
    suspects = _listed(make_ctx)
    assert "in the future" in (suspects[FUTURE] or "")
    assert suspects[ours] is None
    table = run_task(make_ctx("restore"), list=True).output or ""
    assert "SUSPECT: named for 2099-01-01 00:00 UTC, in the future" in table


def test_object_without_metadata_is_never_chosen(
    make_ctx: Any, app_db: Path, settings: Settings, tmp_path: Path
) -> None:
    ours, _, s3 = _our_backup(make_ctx, settings)
    planted = f"backup-{utcnow() + timedelta(minutes=2):%Y-%m-%d-%H-%M}.db"
    s3.put_object(Bucket=settings.s3_bucket_backups, Key=planted, Body=b"abc")

    latest = run_task(make_ctx("restore"), to=tmp_path / "latest.db")
    at = run_task(make_ctx("restore"), at=utcnow().isoformat(), to=tmp_path / "at.db")
    newest = newest_backup(s3, settings, utcnow())

    assert latest.details["key"] == ours and at.details["key"] == ours
    assert newest is not None and newest[0] == ours
    assert "no backup metadata" in (_listed(make_ctx)[planted] or "")
    named = run_task(make_ctx("restore"), key=planted, to=tmp_path / "named.db")
    assert named.exit_code == 1 and "cannot be verified" in named.message
    assert not (tmp_path / "named.db").exists()


def test_malformed_metadata_and_a_renamed_copy_are_suspect(
    make_ctx: Any, app_db: Path, settings: Settings
) -> None:
    ours, _, s3 = _our_backup(make_ctx, settings)
    bucket = settings.s3_bucket_backups
    bad_counts = "backup-2026-01-01-00-00.db"
    renamed = "backup-2026-01-02-00-00.db"
    _copy(
        s3,
        bucket,
        ours,
        bad_counts,
        **{"row-counts": "[1, 2]", "taken-at": "2026-01-01T00:00:00+00:00"},
    )
    _copy(s3, bucket, ours, renamed)

    suspects = _listed(make_ctx)

    assert "row-counts is not an object" in (suspects[bad_counts] or "")
    assert "is not the minute its key names" in (suspects[renamed] or "")
    assert suspects[ours] is None


def test_all_suspect_means_no_restore_and_says_why(
    make_ctx: Any, settings: Settings, tmp_path: Path, aws: Any
) -> None:
    s3 = aws("s3")
    s3.put_object(Bucket=settings.s3_bucket_backups, Key=FUTURE, Body=b"abc")

    result = run_task(make_ctx("restore"), to=tmp_path / "x.db")

    assert result.exit_code == 1 and "\n" not in result.message
    assert "no backup to trust" in result.message and FUTURE in result.message
    assert not (tmp_path / "x.db").exists()
    assert newest_backup(s3, settings, utcnow()) is None


def test_backup_age_is_taken_from_the_recorded_second(aws: Any, settings: Settings) -> None:
    s3 = aws("s3")
    taken = datetime(2026, 11, 24, 5, 0, 41, tzinfo=UTC)
    plant_backup(s3, settings.s3_bucket_backups, "backup-2026-11-24-05-00.db", taken)
    plant_backup(s3, settings.s3_bucket_backups, "backup-2026-11-24-05-59.db", taken, b"")

    found = newest_backup(s3, settings, datetime(2026, 11, 24, 6, 0, tzinfo=UTC))

    assert found == ("backup-2026-11-24-05-00.db", taken)


def test_backup_age_passes_over_a_planted_newer_object(aws: Any, settings: Settings) -> None:
    s3 = aws("s3")
    bucket = settings.s3_bucket_backups
    key = "backup-2026-11-24-00-00.db"
    plant_backup(s3, bucket, key, key_time(key) + timedelta(seconds=3))  # type: ignore[operator]
    s3.put_object(Bucket=bucket, Key="backup-2026-11-24-05-59.db", Body=b"abc")
    s3.put_object(Bucket=bucket, Key="backup-2026-11-25-00-00.db", Body=b"abc")

    found = newest_backup(s3, settings, datetime(2026, 11, 24, 6, 0, tzinfo=UTC))

    assert found is not None and found[0] == key
    assert found[1] == datetime(2026, 11, 24, 0, 0, 3, tzinfo=UTC)


def test_restore_checks_the_row_counts_in_the_metadata(
    make_ctx: Any, app_db: Path, settings: Settings, tmp_path: Path
) -> None:
    ours, metadata, s3 = _our_backup(make_ctx, settings)
    counts = json.loads(metadata["row-counts"])
    counts["analyses"] += 1
    bucket = settings.s3_bucket_backups
    body = s3.get_object(Bucket=bucket, Key=ours)["Body"].read()
    s3.put_object(
        Bucket=bucket, Key=ours, Body=body, Metadata={**metadata, "row-counts": json.dumps(counts)}
    )

    result = run_task(make_ctx("restore"), to=tmp_path / "r.db")

    assert result.exit_code == 1 and "\n" not in result.message
    assert "row counts differ: analyses 200 != 201" in result.message
    assert not (tmp_path / "r.db").exists()


def test_drill_passes_over_suspect_newer_objects_and_flags_them(
    make_ctx: Any, app_db: Path, settings: Settings
) -> None:
    ours, _, s3 = _our_backup(make_ctx, settings)
    _copy(s3, settings.s3_bucket_backups, ours, FUTURE)

    result = run_task(make_ctx("verify-backup"))

    assert result.details["key"] == ours and result.details["problems"] == []
    assert result.status is Status.VIOLATION
    assert f"passed over as suspect: {FUTURE}" in result.message
    named = run_task(make_ctx("verify-backup"), key=FUTURE)
    assert named.status is Status.VIOLATION and "in the future" in named.message


def test_a_drill_with_only_suspect_objects_is_a_violation_naming_them(
    make_ctx: Any, settings: Settings, aws: Any
) -> None:
    aws("s3").put_object(Bucket=settings.s3_bucket_backups, Key=FUTURE, Body=b"abc")

    result = run_task(make_ctx("verify-backup"))

    assert result.status is Status.VIOLATION and "\n" not in result.message
    assert "no backup to trust" in result.message and FUTURE in result.message

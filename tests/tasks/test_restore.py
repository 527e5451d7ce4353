from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from opsd.results import Status
from opsd.settings import Settings
from tasks.backups.download import ProgressLine
from tasks.backups.store import key_time
from tests.tasks.backup_helpers import run_task

KEYS = ("backup-2026-11-20-00-00.db", "backup-2026-11-20-06-00.db", "backup-2026-11-20-12-00.db")


@pytest.fixture
def backups(make_ctx: Any, app_db: Path, settings: Settings) -> dict[str, bytes]:
    """Three backups at known times (copies of one real backup, metadata and all), and the
    live database then changed, so that a restore is visible."""
    result = run_task(make_ctx("backup"))
    assert result.status is Status.OK, result.message
    s3 = make_ctx("restore").clients("s3")
    bucket = settings.s3_bucket_backups
    metadata = s3.head_object(Bucket=bucket, Key=result.details["key"])["Metadata"]
    for key in KEYS:
        s3.copy_object(
            Bucket=bucket,
            Key=key,
            CopySource={"Bucket": bucket, "Key": result.details["key"]},
            ChecksumAlgorithm="SHA256",
            MetadataDirective="REPLACE",
            Metadata={**metadata, "taken-at": f"{key_time(key):%Y-%m-%dT%H:%M}:07+00:00"},
        )
    s3.delete_object(Bucket=bucket, Key=result.details["key"])
    body = s3.get_object(Bucket=bucket, Key=KEYS[-1])["Body"].read()
    conn = sqlite3.connect(app_db)
    conn.execute("DELETE FROM analyses WHERE id > 10")
    conn.commit()
    conn.close()
    return {key: body for key in KEYS}


def _analyses(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT count(*) FROM analyses").fetchone()[0])
    finally:
        conn.close()


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


def test_list_shows_backups_newest_first_with_reason_and_drill(
    make_ctx: Any, backups: dict[str, bytes]
) -> None:
    assert run_task(make_ctx("verify-backup")).status is Status.OK
    result = run_task(make_ctx("restore"), list=True)
    lines = (result.output or "").splitlines()
    assert lines[0].split()[:2] == ["KEY", "TAKEN"]
    assert [line.split()[0] for line in lines[1:]] == list(reversed(KEYS))
    assert "2026-11-20 12:00" in lines[1] and "scheduled" in lines[1] and "passed" in lines[1]
    assert lines[2].endswith("-")


def test_list_as_json(make_ctx: Any, backups: dict[str, bytes]) -> None:
    result = run_task(make_ctx("restore"), list=True, json=True, limit=2)
    rows = json.loads(result.output or "")
    assert [row["key"] for row in rows] == [KEYS[2], KEYS[1]]
    assert rows[0]["taken_at"] == "2026-11-20T12:00:00+00:00"
    assert rows[0]["reason"] == "scheduled" and rows[0]["drill"] is None


def test_restore_to_a_new_file(make_ctx: Any, backups: dict[str, bytes], tmp_path: Path) -> None:
    target = tmp_path / "restored" / "copy.db"
    result = run_task(make_ctx("restore"), to=target)
    assert result.status is Status.OK, result.message
    assert target.read_bytes() == backups[KEYS[-1]]
    assert _analyses(target) == 200
    assert _leftovers(target.parent) == []


def test_restore_refuses_to_overwrite_without_force(
    make_ctx: Any, backups: dict[str, bytes], tmp_path: Path
) -> None:
    target = tmp_path / "other.db"
    target.write_bytes(b"precious")
    refused = run_task(make_ctx("restore"), to=target)
    assert refused.status is Status.USAGE and "--force" in refused.message
    assert target.read_bytes() == b"precious"
    forced = run_task(make_ctx("restore"), to=target, force=True)
    assert forced.status is Status.OK
    assert target.read_bytes() == backups[KEYS[-1]]
    assert Path(forced.details["kept"]).read_bytes() == b"precious"


def test_in_place_restore_needs_yes_off_a_terminal(
    make_ctx: Any, backups: dict[str, bytes], app_db: Path
) -> None:
    before = app_db.read_bytes()
    result = run_task(make_ctx("restore"))
    assert result.status is Status.USAGE
    assert "--yes" in result.message and "--stop-service" in result.message
    assert "\n" not in result.message
    assert app_db.read_bytes() == before


def test_in_place_restore_keeps_the_old_database_and_its_journal(
    make_ctx: Any, backups: dict[str, bytes], app_db: Path
) -> None:
    before = app_db.read_bytes()
    journal = app_db.with_name("app.db-journal")
    journal.write_bytes(b"hot journal of the old database")
    shm = app_db.with_name("app.db-shm")
    shm.write_bytes(b"stale")
    result = run_task(make_ctx("restore"), yes=True)
    assert result.status is Status.OK, result.message
    kept = Path(result.details["kept"])
    assert kept.name.startswith("app.db.pre-restore-")
    assert kept.read_bytes() == before
    assert kept.with_name(kept.name + "-journal").read_bytes() == b"hot journal of the old database"
    assert not journal.exists() and not shm.exists()
    assert _analyses(app_db) == 200
    assert _leftovers(app_db.parent) == []


def test_interactive_restore_asks_first(
    make_ctx: Any, backups: dict[str, bytes], app_db: Path
) -> None:
    before = app_db.read_bytes()
    asked: list[str] = []

    def decline(prompt: str) -> bool:
        asked.append(prompt)
        return False

    declined = run_task(make_ctx("restore", interactive=True, confirm=decline))
    assert declined.status is Status.SKIPPED and "cancelled" in declined.message
    assert asked and str(app_db) in asked[0]
    assert app_db.read_bytes() == before
    assert _leftovers(app_db.parent) == []
    accepted = run_task(make_ctx("restore", interactive=True, confirm=lambda _: True))
    assert accepted.status is Status.OK
    assert _analyses(app_db) == 200


def test_restore_at_a_time_takes_the_newest_at_or_before(
    make_ctx: Any, backups: dict[str, bytes], tmp_path: Path
) -> None:
    result = run_task(make_ctx("restore"), at="2026-11-20 11:59", to=tmp_path / "a.db")
    assert result.details["key"] == KEYS[1]
    iso = run_task(make_ctx("restore"), at="2026-11-20T06:00:00Z", to=tmp_path / "b.db")
    assert iso.details["key"] == KEYS[1]
    zoned = run_task(make_ctx("restore"), at="2026-11-20T13:30+02:00", to=tmp_path / "c.db")
    assert zoned.details["key"] == KEYS[1]


def test_restore_at_before_the_first_backup_names_the_earliest(
    make_ctx: Any, backups: dict[str, bytes], tmp_path: Path
) -> None:
    result = run_task(make_ctx("restore"), at="2026-11-19 23:59", to=tmp_path / "x.db")
    assert result.exit_code == 1 and "\n" not in result.message
    assert "no backup at or before 2026-11-19 23:59 UTC" in result.message
    assert KEYS[0] in result.message
    assert not (tmp_path / "x.db").exists()


def test_restore_at_rejects_a_bad_timestamp(make_ctx: Any, backups: dict[str, bytes]) -> None:
    result = run_task(make_ctx("restore"), at="yesterday", yes=True)
    assert result.status is Status.USAGE and "not a timestamp" in result.message


def test_restore_by_key(make_ctx: Any, backups: dict[str, bytes], tmp_path: Path) -> None:
    result = run_task(make_ctx("restore"), key=KEYS[0], to=tmp_path / "k.db")
    assert result.status is Status.OK and result.details["key"] == KEYS[0]
    missing = run_task(make_ctx("restore"), key="backup-1999-01-01-00-00.db", to=tmp_path / "m.db")
    assert missing.exit_code == 1 and "no backup named" in missing.message


def test_dry_run_prints_the_plan_and_changes_nothing(
    make_ctx: Any, backups: dict[str, bytes], app_db: Path
) -> None:
    before = app_db.read_bytes()
    result = run_task(make_ctx("restore"), dry_run=True)
    assert result.status is Status.OK
    assert KEYS[-1] in (result.output or "") and "pre-restore" in (result.output or "")
    assert app_db.read_bytes() == before
    assert sorted(p.name for p in app_db.parent.iterdir() if "pre-restore" in p.name) == []


def test_object_whose_bytes_do_not_match_its_sha256_is_refused(
    make_ctx: Any, backups: dict[str, bytes], app_db: Path, settings: Settings
) -> None:
    s3 = make_ctx("restore").clients("s3")
    bucket = settings.s3_bucket_backups
    head = s3.head_object(Bucket=bucket, Key=KEYS[-1])
    tampered = bytearray(backups[KEYS[-1]])
    tampered[3000] ^= 0x01
    s3.put_object(Bucket=bucket, Key=KEYS[-1], Body=bytes(tampered), Metadata=head["Metadata"])
    before = app_db.read_bytes()
    result = run_task(make_ctx("restore"), yes=True)
    assert result.exit_code == 1 and "\n" not in result.message
    assert "refused" in result.message and "sha256" in result.message
    assert app_db.read_bytes() == before
    assert _leftovers(app_db.parent) == []
    assert [p for p in app_db.parent.iterdir() if "pre-restore" in p.name] == []


def test_full_disk_removes_the_temporary_file_and_keeps_the_database(
    make_ctx: Any, backups: dict[str, bytes], app_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_fdopen = os.fdopen

    class FullDisk:
        def __init__(self, handle: Any) -> None:
            self._handle = handle
            self._written = 0

        def write(self, data: bytes) -> int:
            if self._written + len(data) > 8192:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            self._written += len(data)
            return int(self._handle.write(data))

        def __getattr__(self, name: str) -> Any:
            return getattr(self._handle, name)

        def __enter__(self) -> FullDisk:
            return self

        def __exit__(self, *exc: object) -> None:
            self._handle.close()

    monkeypatch.setattr(
        "tasks.backups.download.os.fdopen", lambda fd, mode: FullDisk(real_fdopen(fd, mode))
    )
    before = app_db.read_bytes()
    result = run_task(make_ctx("restore"), yes=True)
    assert result.exit_code == 1 and "\n" not in result.message
    assert "No space left on device" in result.message
    assert app_db.read_bytes() == before
    assert _leftovers(app_db.parent) == []


def test_read_only_file_system_keeps_the_database(
    make_ctx: Any, backups: dict[str, bytes], app_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def read_only(*args: Any, **kwargs: Any) -> Any:
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr("tasks.backups.download.scratch_file", read_only)
    before = app_db.read_bytes()
    result = run_task(make_ctx("restore"), yes=True)
    assert result.exit_code == 1 and "Read-only file system" in result.message
    assert app_db.read_bytes() == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_read_only_target_directory_keeps_the_database(
    make_ctx: Any, backups: dict[str, bytes], app_db: Path
) -> None:
    before = app_db.read_bytes()
    app_db.parent.chmod(0o555)
    try:
        result = run_task(make_ctx("restore"), yes=True)
    finally:
        app_db.parent.chmod(0o755)
    assert result.exit_code == 1 and "Permission denied" in result.message
    assert app_db.read_bytes() == before
    assert _leftovers(app_db.parent) == []


def test_restored_file_matches_the_recorded_sha256(
    make_ctx: Any, backups: dict[str, bytes], settings: Settings, tmp_path: Path
) -> None:
    target = tmp_path / "r.db"
    result = run_task(make_ctx("restore"), to=target)
    head = (
        make_ctx("restore")
        .clients("s3")
        .head_object(Bucket=settings.s3_bucket_backups, Key=KEYS[-1])
    )
    assert hashlib.sha256(target.read_bytes()).hexdigest() == head["Metadata"]["sha256"]
    assert result.details["sha256"] == head["Metadata"]["sha256"]


def test_restore_in_place_when_the_database_is_gone(
    make_ctx: Any, backups: dict[str, bytes], app_db: Path
) -> None:
    app_db.unlink()
    result = run_task(make_ctx("restore"), yes=True)
    assert result.status is Status.OK, result.message
    assert "kept" not in result.details
    assert _analyses(app_db) == 200


def test_progress_line_counts_up_to_the_total() -> None:
    stream = io.StringIO()
    progress = ProgressLine("restoring backup-x.db", 4 << 20, stream)
    progress.update(1 << 20)
    progress.update(4 << 20, final=True)
    shown = stream.getvalue()
    assert shown.startswith("\rrestoring backup-x.db  1.0/4.0 MB   25%")
    assert shown.endswith("4.0/4.0 MB  100%\n")


def test_a_failed_sync_of_the_download_refuses_and_keeps_the_database(
    make_ctx: Any, backups: dict[str, bytes], app_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing_sync(path: Path) -> None:
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr("tasks.restore.sync_file", failing_sync)
    before = hashlib.sha256(app_db.read_bytes()).hexdigest()
    result = run_task(make_ctx("restore"), yes=True)
    assert result.exit_code == 1 and "\n" not in result.message
    assert "Input/output error" in result.message and "untouched" in result.message
    assert hashlib.sha256(app_db.read_bytes()).hexdigest() == before
    assert _leftovers(app_db.parent) == []


def test_failure_messages_do_not_repeat_the_task_name(make_ctx: Any, tmp_path: Path) -> None:
    """The command line shows `restore failed: <message>`: no "restore failed: restore: …"."""
    empty = run_task(make_ctx("restore"), to=tmp_path / "x.db")
    assert empty.exit_code == 1 and empty.message.startswith("no backups to restore from")

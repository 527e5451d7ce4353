"""A backup is a backup of the app's database (issue 12.6): not an empty file, not a
database without the app's schema, not a WAL-mode file; such objects already in the bucket
are flagged."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any

from opsd.results import Status
from opsd.settings import Settings
from tasks.backups.snapshot import read_database_facts
from tests.conftest import add_analysis
from tests.tasks.backup_helpers import bucket_keys, plant_backup, run_task, scratch_files


def _companions(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir() if p.name.endswith(("-wal", "-shm")))


def _refused(result: Any, settings: Settings, s3: Any, *words: str) -> None:
    assert result.exit_code == 1, result.message
    assert "\n" not in result.message and "nothing uploaded" in result.message
    for word in words:
        assert word in result.message
    assert bucket_keys(s3, settings.s3_bucket_backups) == []
    assert settings.scratch_dir is not None and scratch_files(settings.scratch_dir) == []


def test_an_empty_database_file_is_refused_and_nothing_uploaded(
    make_ctx: Any, settings: Settings
) -> None:
    settings.database_path.parent.mkdir(parents=True)
    settings.database_path.write_bytes(b"")
    ctx = make_ctx("backup")

    result = run_task(ctx)

    _refused(result, settings, ctx.clients("s3"), "empty (0 bytes", "--allow-empty")


def test_a_database_without_the_app_schema_is_refused(make_ctx: Any, settings: Settings) -> None:
    settings.database_path.parent.mkdir(parents=True)
    conn = sqlite3.connect(settings.database_path)
    conn.execute("CREATE TABLE notes (body TEXT)")
    conn.commit()
    conn.close()
    ctx = make_ctx("backup")

    result = run_task(ctx)

    _refused(result, settings, ctx.clients("s3"), "no Alembic revision")


def test_allow_empty_backs_up_on_purpose_and_the_object_is_flagged(
    make_ctx: Any, settings: Settings, tmp_path: Path
) -> None:
    settings.database_path.parent.mkdir(parents=True)
    settings.database_path.write_bytes(b"")

    result = run_task(make_ctx("backup"), allow_empty=True)

    assert result.status is Status.OK, result.message
    key = result.details["key"]
    rows = json.loads(run_task(make_ctx("restore"), list=True, json=True).output or "")
    assert rows[0]["key"] == key and "empty database" in rows[0]["suspect"]
    drill = run_task(make_ctx("verify-backup"), key=key)
    assert drill.status is Status.VIOLATION and "empty database" in drill.message
    latest = run_task(make_ctx("restore"), to=tmp_path / "r.db")
    assert latest.exit_code == 1 and "no backup to trust" in latest.message


def test_restore_list_and_drill_flag_an_empty_backup_already_in_the_bucket(
    make_ctx: Any, app_db: Path, settings: Settings, aws: Any
) -> None:
    assert run_task(make_ctx("backup")).status is Status.OK
    s3 = aws("s3")
    empty = "backup-2026-01-01-00-00.db"
    plant_backup(
        s3,
        settings.s3_bucket_backups,
        empty,
        datetime.fromisoformat("2026-01-01T00:00:05+00:00"),
        b"",
        **{"alembic-revision": "", "row-counts": "{}", "page-count": "0"},
    )

    rows = {
        r["key"]: r
        for r in json.loads(run_task(make_ctx("restore"), list=True, json=True).output or "")
    }
    drill = run_task(make_ctx("verify-backup"), key=empty)

    assert "holds an empty database" in rows[empty]["suspect"]
    assert drill.status is Status.VIOLATION and "holds an empty database" in drill.message


def _wal_database(path: Path) -> None:
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode = WAL").fetchone()[0] == "wal"
    add_analysis(conn, "2026-11-24T00:00:00+00:00")
    conn.commit()
    conn.close()


def test_a_wal_mode_database_is_refused_and_leaves_no_wal_or_shm(
    make_ctx: Any, app_db: Path, settings: Settings
) -> None:
    _wal_database(app_db)
    assert _companions(app_db) == []
    ctx = make_ctx("backup")

    result = run_task(ctx)

    _refused(result, settings, ctx.clients("s3"), "WAL mode", "journal_mode=DELETE")
    assert _companions(app_db) == []


def test_a_wal_mode_backup_already_in_the_bucket_drills_and_restores_in_rollback_mode(
    make_ctx: Any, app_db: Path, settings: Settings, tmp_path: Path
) -> None:
    """Backups taken before WAL databases were refused were copied in WAL mode."""
    result = run_task(make_ctx("backup"))
    key = result.details["key"]
    s3 = make_ctx("restore").clients("s3")
    bucket = settings.s3_bucket_backups
    wal_copy = tmp_path / "wal-copy.db"
    wal_copy.write_bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    _wal_database(wal_copy)
    body = wal_copy.read_bytes()
    assert body[18:20] == b"\x02\x02"
    head = s3.head_object(Bucket=bucket, Key=key)["Metadata"]
    facts = read_database_facts(wal_copy)
    s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=body,
        Metadata={
            **head,
            "sha256": hashlib.sha256(body).hexdigest(),
            "size": str(len(body)),
            "page-count": str(facts.page_count),
            "row-counts": json.dumps(facts.row_counts, separators=(",", ":"), sort_keys=True),
        },
    )
    for leftover in tmp_path.glob("wal-copy.db*"):
        leftover.unlink()

    drill = run_task(make_ctx("verify-backup"))
    target = tmp_path / "restored" / "app.db"
    restored = run_task(make_ctx("restore"), to=target)

    assert drill.status is Status.OK, drill.message
    assert restored.status is Status.OK, restored.message
    assert target.read_bytes()[18:20] == b"\x01\x01"
    conn = sqlite3.connect(target)
    assert conn.execute("SELECT count(*) FROM analyses").fetchone()[0] == 201
    conn.close()
    assert _companions(target) == []
    assert settings.scratch_dir is not None and scratch_files(settings.scratch_dir) == []

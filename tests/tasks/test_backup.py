from __future__ import annotations

import base64
import contextlib
import errno
import hashlib
import io
import json
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError
from crc32c import crc32c

import tasks.backups.memory as memory_module
import tasks.backups.snapshot as snapshot_module
from opsd.clock import utcnow
from opsd.database import table_row_counts
from opsd.results import Status, TaskError
from opsd.settings import Settings
from tasks import backup as backup_task
from tasks.backups import upload as s3_upload
from tasks.backups.checksums import FileDigests, aligned_buffer
from tasks.backups.store import BackupStore
from tasks.backups.upload import BufferSlice, FileSlice, PartReader
from tests.conftest import app_schema_head
from tests.tasks.backup_helpers import (
    add_bulk,
    bucket_keys,
    corrupt_middle_page,
    run_task,
    scratch_files,
)
from tests.tasks.s3_faults import error_response, on_operation


@pytest.fixture
def s3(make_ctx: Any) -> Any:
    return make_ctx("backup").clients("s3")


def _one_line(message: str) -> bool:
    return bool(message) and "\n" not in message


def test_backup_uploads_a_verified_encrypted_object_with_metadata(
    make_ctx: Any, app_db: Path, settings: Settings
) -> None:
    ctx = make_ctx("backup")
    result = run_task(ctx, reason="manual")

    assert result.status is Status.OK, result.message
    s3 = ctx.clients("s3")
    key = result.details["key"]
    assert key.startswith("backup-") and key.endswith(".db")
    head = s3.head_object(Bucket=settings.s3_bucket_backups, Key=key)
    body = s3.get_object(Bucket=settings.s3_bucket_backups, Key=key)["Body"].read()
    meta = head["Metadata"]
    assert head["ServerSideEncryption"] == "AES256"
    assert meta["sha256"] == hashlib.sha256(body).hexdigest() == result.details["sha256"]
    assert int(meta["size"]) == len(body)
    assert json.loads(meta["row-counts"]) == {
        "admin_sessions": 0,
        "alembic_version": 1,
        "analyses": 200,
        "app_config": 0,
        "drawings": 200,
    }
    assert meta["alembic-revision"] == app_schema_head()
    with closing(sqlite3.connect(app_db)) as conn:
        assert meta["user-version"] == str(conn.execute("PRAGMA user_version").fetchone()[0])
    assert meta["reason"] == "manual"
    assert int(meta["page-count"]) * int(meta["page-size"]) == len(body)
    assert body[:16] == b"SQLite format 3\x00"
    assert scratch_files(settings.scratch_dir) == []


def test_backup_publishes_size_and_duration(make_ctx: Any, app_db: Path) -> None:
    ctx = make_ctx("backup")
    assert run_task(ctx).status is Status.OK
    names = {m["MetricName"] for m in ctx.clients("cloudwatch").list_metrics()["Metrics"]}
    assert {"BackupSizeBytes", "BackupDurationSeconds"} <= names


def _sent_checksums(s3: Any) -> dict[str, list[dict[str, str]]]:
    """The x-amz-checksum-* headers of every request sent, by operation."""
    sent: dict[str, list[dict[str, str]]] = {}

    def record(request: Any, **kwargs: Any) -> None:
        headers = {
            name.lower(): value.decode() if isinstance(value, bytes) else value
            for name, value in request.headers.items()
            if name.lower().startswith("x-amz-checksum-")
        }
        sent.setdefault(kwargs["event_name"].rsplit(".", 1)[-1], []).append(headers)

    s3.meta.events.register("before-send.s3.*", record)
    return sent


def _crc32c(data: bytes) -> str:
    return base64.b64encode(crc32c(data).to_bytes(4, "big")).decode()


def test_every_part_and_the_object_carry_the_crc32c_of_the_snapshots_bytes(
    make_ctx: Any, app_db: Path, settings: Settings
) -> None:
    add_bulk(app_db, 12)
    settings.backup_part_size_mb = 5
    ctx = make_ctx("backup")
    s3 = ctx.clients("s3")
    sent = _sent_checksums(s3)
    result = run_task(ctx)
    assert result.status is Status.OK, result.message
    assert "4 parts" in result.message
    key = result.details["key"]
    data = s3.get_object(Bucket=settings.s3_bucket_backups, Key=key)["Body"].read()
    part = 5 << 20
    expected = [_crc32c(data[i : i + part]) for i in range(0, len(data), part)]
    assert sorted(h["x-amz-checksum-crc32c"] for h in sent["UploadPart"]) == sorted(expected)
    assert sent["CompleteMultipartUpload"] == [{"x-amz-checksum-type": "COMPOSITE"}]
    composite = _crc32c(b"".join(base64.b64decode(crc) for crc in expected))
    # S3 writes a composite as 'digest-N'; moto leaves out the '-N'.
    assert result.details["checksum_crc32c"].removesuffix("-4") == composite
    head = s3.head_object(Bucket=settings.s3_bucket_backups, Key=key)
    assert head["Metadata"]["sha256"] == hashlib.sha256(data).hexdigest()


def _corrupt_part_two_on_its_way(monkeypatch: pytest.MonkeyPatch) -> None:
    """Flip a byte of the second 5 MiB part between the disk and the socket, after the
    snapshot was hashed: what a bad NIC, page or proxy would do."""
    real_body = PartReader.body

    @contextlib.contextmanager
    def body(reader: PartReader, offset: int, length: int) -> Iterator[Any]:
        with real_body(reader, offset, length) as part:
            if offset != 5 << 20:
                yield part
                return
            data = part.read()
            yield bytes([data[0] ^ 0xFF]) + data[1:]

    monkeypatch.setattr(PartReader, "body", body)


def test_a_part_corrupted_in_transit_is_refused_by_its_checksum_and_nothing_is_stored(
    make_ctx: Any, app_db: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """S3 refuses a part whose bytes do not match its x-amz-checksum-* header (BadDigest);
    moto stores it unchecked, so here a hook checks each part's body the way S3 does."""
    add_bulk(app_db, 12)
    settings.backup_part_size_mb = 5
    settings.backup_upload_concurrency = 1
    ctx = make_ctx("backup")
    s3 = ctx.clients("s3")
    _corrupt_part_two_on_its_way(monkeypatch)
    refused: list[int] = []

    def verify_like_s3(request: Any, **_: Any) -> Any:
        body = request.body
        if not isinstance(body, bytes):
            body = body.read()
            request.body.seek(0)
        claimed = request.headers["x-amz-checksum-crc32c"]
        if (claimed.decode() if isinstance(claimed, bytes) else claimed) != _crc32c(body):
            refused.append(len(body))
            return error_response(400, "BadDigest", "The CRC32C you specified did not match")
        return None

    s3.meta.events.register_first("before-send.s3.UploadPart", verify_like_s3)
    result = run_task(ctx)
    assert result.exit_code == 1 and refused == [5 << 20]
    assert _one_line(result.message) and "part 2/4: BadDigest" in result.message
    assert bucket_keys(s3, settings.s3_bucket_backups) == []
    assert s3.list_multipart_uploads(Bucket=settings.s3_bucket_backups).get("Uploads", []) == []
    assert scratch_files(settings.scratch_dir) == []


def test_a_corrupted_part_the_endpoint_kept_fails_the_verification_after_upload(
    make_ctx: Any, app_db: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """moto keeps the corrupted part but computes the object's checksum from what it
    stored: the HEAD after the upload shows the difference and the backup fails."""
    add_bulk(app_db, 12)
    settings.backup_part_size_mb = 5
    _corrupt_part_two_on_its_way(monkeypatch)
    result = run_task(make_ctx("backup"))
    assert result.exit_code == 1
    assert _one_line(result.message) and "verify backup-" in result.message
    assert "S3 checksum" in result.message


def test_dry_run_shows_the_plan_and_uploads_nothing(
    make_ctx: Any, app_db: Path, settings: Settings, s3: Any
) -> None:
    result = run_task(make_ctx("backup"), dry_run=True)
    assert result.status is Status.OK
    assert "would upload s3://" in (result.output or "")
    assert "row-counts" in (result.output or "")
    assert bucket_keys(s3, settings.s3_bucket_backups) == []
    assert scratch_files(settings.scratch_dir) == []


def test_second_backup_in_the_same_minute_is_skipped(
    make_ctx: Any, app_db: Path, settings: Settings, s3: Any
) -> None:
    minute = utcnow().replace(second=0)
    first = run_task(make_ctx("backup", clock=lambda: minute))
    second = run_task(make_ctx("backup", clock=lambda: minute + timedelta(seconds=59)))
    assert first.status is Status.OK
    assert second.status is Status.SKIPPED and second.exit_code == 0
    assert "already exists" in second.message
    assert bucket_keys(s3, settings.s3_bucket_backups) == [first.details["key"]]


def test_backup_losing_the_race_at_completion_is_skipped_and_aborted(
    make_ctx: Any, app_db: Path, settings: Settings, s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = utcnow()
    first = run_task(make_ctx("backup", clock=lambda: now))
    # A concurrent delivery that looked before the first one finished: HEAD saw nothing.
    monkeypatch.setattr(BackupStore, "head", lambda *_: None)
    second = run_task(make_ctx("backup", clock=lambda: now))
    assert second.status is Status.SKIPPED, second.message
    assert bucket_keys(s3, settings.s3_bucket_backups) == [first.details["key"]]
    assert s3.list_multipart_uploads(Bucket=settings.s3_bucket_backups).get("Uploads", []) == []


def test_snapshot_is_removed_before_s3_assembles_the_object(
    make_ctx: Any, app_db: Path, settings: Settings
) -> None:
    ctx = make_ctx("backup")
    left_at_completion: list[list[Path]] = []
    on_operation(
        ctx.clients("s3"),
        "CompleteMultipartUpload",
        lambda _: left_at_completion.append(scratch_files(settings.scratch_dir)),
    )
    result = run_task(ctx)
    assert result.status is Status.OK, result.message
    assert left_at_completion == [[]]


def test_missing_database_fails_with_one_line(make_ctx: Any, settings: Settings, s3: Any) -> None:
    result = run_task(make_ctx("backup"))
    assert result.status is Status.FAILED and result.exit_code == 1
    assert _one_line(result.message) and "database file not found" in result.message
    assert bucket_keys(s3, settings.s3_bucket_backups) == []


def test_file_that_is_not_sqlite_fails(make_ctx: Any, settings: Settings, s3: Any) -> None:
    settings.database_path.parent.mkdir(parents=True, exist_ok=True)
    settings.database_path.write_text("id,name\n1,not a database\n")
    result = run_task(make_ctx("backup"))
    assert result.exit_code == 1
    assert _one_line(result.message) and "not an SQLite database" in result.message
    assert bucket_keys(s3, settings.s3_bucket_backups) == []


@pytest.mark.parametrize("memory", ["ample", "too-little"])
def test_corrupted_database_uploads_nothing(
    make_ctx: Any,
    app_db: Path,
    settings: Settings,
    s3: Any,
    memory: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Checked through a map, or through the prefetching VFS when the snapshot is larger
    than the memory at hand."""
    if memory == "too-little":
        monkeypatch.setattr(memory_module, "available_memory", lambda: 0)
    corrupt_middle_page(app_db)
    result = run_task(make_ctx("backup"))
    assert result.exit_code == 1
    assert _one_line(result.message) and "integrity check" in result.message
    assert "nothing uploaded" in result.message
    assert bucket_keys(s3, settings.s3_bucket_backups) == []
    assert scratch_files(settings.scratch_dir) == []


def test_scratch_disk_filling_up_mid_copy_fails_with_one_line_and_leaves_nothing(
    make_ctx: Any, app_db: Path, settings: Settings, s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_bulk(app_db, 4)
    monkeypatch.setattr(snapshot_module, "_COPY_CHUNK", 1 << 20)
    real_sendfile = os.sendfile
    copied: list[int] = []

    def fills_up(out_fd: int, in_fd: int, offset: int, count: int) -> int:
        if os.readlink(f"/proc/self/fd/{out_fd}") == os.devnull:  # warming the cache
            return real_sendfile(out_fd, in_fd, offset, count)
        if offset >= 2 << 20:
            raise OSError(errno.ENOSPC, "No space left on device")
        copied.append(count)
        return real_sendfile(out_fd, in_fd, offset, count)

    monkeypatch.setattr(os, "sendfile", fills_up)
    result = run_task(make_ctx("backup"))
    assert result.exit_code == 1 and copied
    assert _one_line(result.message) and "No space left on device" in result.message
    assert bucket_keys(s3, settings.s3_bucket_backups) == []
    assert scratch_files(settings.scratch_dir) == []
    for thread in threading.enumerate():  # the hashing of the copy ended with it
        if thread.name == "copy-sha256":
            thread.join(timeout=5)
            assert not thread.is_alive()


def test_missing_bucket_fails_naming_it(
    make_ctx: Any, app_db: Path, settings: Settings, s3: Any
) -> None:
    s3.delete_bucket(Bucket=settings.s3_bucket_backups)
    result = run_task(make_ctx("backup"))
    assert result.exit_code == 1
    assert _one_line(result.message) and "NoSuchBucket" in result.message
    assert scratch_files(settings.scratch_dir) == []


def test_access_denied_fails_and_leaves_nothing(
    make_ctx: Any, app_db: Path, settings: Settings, s3: Any
) -> None:
    on_operation(s3, "UploadPart", lambda n: error_response(403, "AccessDenied", "Access Denied"))
    result = run_task(make_ctx("backup"))
    assert result.exit_code == 1
    assert _one_line(result.message)
    assert "part 1/1: AccessDenied (Access Denied)" in result.message
    assert bucket_keys(s3, settings.s3_bucket_backups) == []
    assert s3.list_multipart_uploads(Bucket=settings.s3_bucket_backups).get("Uploads", []) == []


def test_throttling_is_retried_until_the_upload_succeeds(
    make_ctx: Any, app_db: Path, settings: Settings, s3: Any
) -> None:
    calls = on_operation(
        s3,
        "UploadPart",
        lambda n: (
            error_response(503, "SlowDown", "Please reduce your request rate") if n <= 2 else None
        ),
    )
    result = run_task(make_ctx("backup"))
    assert result.status is Status.OK, result.message
    assert len(calls) == 3
    assert bucket_keys(s3, settings.s3_bucket_backups) == [result.details["key"]]


@pytest.mark.parametrize("memory", ["ample", "too little"])
def test_a_part_cut_off_half_sent_is_sent_again_whole(
    make_ctx: Any, app_db: Path, settings: Settings, memory: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """botocore rewinds a part's body to send it again: from the file (ample memory) as
    from the buffer its thread read it into (a snapshot larger than memory)."""
    add_bulk(app_db, 12)
    if memory == "too little":  # less than twice the snapshot, four times a part
        monkeypatch.setattr(memory_module, "available_memory", lambda: 4 * (5 << 20))
    settings.backup_part_size_mb = 5
    settings.backup_upload_concurrency = 1
    ctx = make_ctx("backup")
    s3 = ctx.clients("s3")
    bodies: list[str] = []

    def cut_second_part(request: Any, **_: Any) -> Any:
        bodies.append(type(request.body).__name__)
        if len(bodies) != 2:
            return None
        request.body.read(100_000)
        return error_response(503, "SlowDown", "Please reduce your request rate")

    s3.meta.events.register_first("before-send.s3.UploadPart", cut_second_part)
    result = run_task(ctx)
    assert result.status is Status.OK, result.message
    parts = -(-result.details["bytes"] // (5 << 20))
    assert parts > 2 and len(bodies) == parts + 1  # the second sent twice
    assert set(bodies) == {"BufferSlice" if memory == "too little" else "FileSlice"}
    stored = s3.get_object(Bucket=settings.s3_bucket_backups, Key=result.details["key"])
    assert hashlib.sha256(stored["Body"].read()).hexdigest() == result.details["sha256"]


def test_connection_dropped_mid_upload_aborts_the_multipart_upload(
    make_ctx: Any, app_db: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("opsd.aws.RETRIES", {"mode": "standard", "max_attempts": 2})
    add_bulk(app_db, 12)
    ctx = make_ctx("backup")
    s3 = ctx.clients("s3")
    uploaded: list[int] = []

    def drop_third_part(n: int) -> None:
        if n >= 3:
            raise EndpointConnectionError(endpoint_url="https://s3.test/")
        uploaded.append(n)

    settings.backup_upload_concurrency = 1
    settings.backup_part_size_mb = 5
    on_operation(s3, "UploadPart", drop_third_part)
    result = run_task(ctx)
    assert result.exit_code == 1
    assert _one_line(result.message) and "part 3/4: EndpointConnectionError" in result.message
    assert uploaded == [1, 2]
    assert bucket_keys(s3, settings.s3_bucket_backups) == []
    assert s3.list_multipart_uploads(Bucket=settings.s3_bucket_backups).get("Uploads", []) == []
    assert scratch_files(settings.scratch_dir) == []


def test_backup_under_a_prefix(make_ctx: Any, app_db: Path, settings: Settings, s3: Any) -> None:
    settings.backup_prefix = "app-db"
    result = run_task(make_ctx("backup"))
    assert result.status is Status.OK
    assert bucket_keys(s3, settings.s3_bucket_backups) == [result.details["key"]]
    assert result.details["key"].startswith("app-db/backup-")


def test_integrity_failure_found_during_the_upload_aborts_it(
    make_ctx: Any, app_db: Path, settings: Settings, s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        "tasks.backups.snapshot.quick_check_errors",
        lambda conn: ["*** in database main ***\nrow 3 missing from index analyses_by_time"],
    )
    result = run_task(make_ctx("backup"))
    assert result.exit_code == 1
    assert result.message.endswith("nothing uploaded: row 3 missing from index analyses_by_time")
    assert bucket_keys(s3, settings.s3_bucket_backups) == []
    assert s3.list_multipart_uploads(Bucket=settings.s3_bucket_backups).get("Uploads", []) == []
    assert scratch_files(settings.scratch_dir) == []


def test_the_quick_check_starts_only_once_the_facts_are_read(
    make_ctx: Any, app_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two passes over a snapshot larger than the task's memory at once evict each other's
    pages and read the file many times over (issue 15): the row counts, then the check."""
    events: list[str] = []
    check_started = threading.Event()
    real_check, real_facts = snapshot_module.quick_check_errors, backup_task.read_database_facts

    def check(conn: sqlite3.Connection) -> list[str]:
        events.append("check started")
        check_started.set()
        return real_check(conn)

    def facts(*args: Any, **kwargs: Any) -> Any:
        read = real_facts(*args, **kwargs)
        check_started.wait(timeout=1.0)  # a check running alongside has started by now
        events.append("facts read")
        return read

    monkeypatch.setattr(snapshot_module, "quick_check_errors", check)
    monkeypatch.setattr(backup_task, "read_database_facts", facts)
    assert run_task(make_ctx("backup")).status is Status.OK
    assert events == ["facts read", "check started"]


@pytest.mark.parametrize("memory", ["ample", "too little"])
def test_the_row_counts_come_from_the_pass_that_hashed_the_snapshot(
    make_ctx: Any,
    app_db: Path,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    memory: str,
) -> None:
    """No further pass over the snapshot to count its rows: 0.55 CPU s for 1 GB in the
    task's limits (issue 15); whether the hashing followed the copy (ample memory) or came
    after it (a snapshot larger than memory, copied past the page cache)."""
    if memory == "too little":
        monkeypatch.setattr(memory_module, "available_memory", lambda: app_db.stat().st_size)

    def counted_by_sql(*args: Any, **kwargs: Any) -> dict[str, int]:
        raise AssertionError("rows counted by SQL")

    monkeypatch.setattr(snapshot_module, "table_row_counts", counted_by_sql)
    monkeypatch.setattr(snapshot_module, "scanned_row_counts", counted_by_sql)
    result = run_task(make_ctx("backup"))
    assert result.status is Status.OK, result.message
    s3 = make_ctx("backup").clients("s3")
    head = s3.head_object(Bucket=settings.s3_bucket_backups, Key=result.details["key"])
    with closing(sqlite3.connect(app_db)) as conn:
        assert json.loads(head["Metadata"]["row-counts"]) == table_row_counts(conn)


def test_verification_after_upload_reports_every_difference() -> None:
    digests = FileDigests("ab" * 32, 8192, 8192, (7,))

    class WrongObject:
        def head_object(self, **_: Any) -> dict[str, Any]:
            return {
                "ContentLength": 4096,
                "Metadata": {"sha256": "cd" * 32},
                "ChecksumCRC32C": "AAAAAA==-1",
                "ServerSideEncryption": "aws:kms",
            }

    with pytest.raises(TaskError) as caught:
        backup_task.verify_uploaded(BackupStore(WrongObject(), "b"), "backup-x.db", digests)
    message = str(caught.value)
    assert message.startswith("verify backup-x.db: size 4096 != 8192; sha256 metadata differs")
    assert (
        "S3 checksum AAAAAA==-1 != nK0vLA==-1" in message
        and "encryption aws:kms != AES256" in message
    )


def _swap_index_column(path: Path) -> None:
    """An index whose entries no longer match its rows: a fault only the full
    integrity_check sees (quick_check does not match index entries to rows)."""
    conn = sqlite3.connect(path)
    conn.execute("CREATE INDEX analyses_by_score ON analyses (anomaly_score)")
    conn.commit()
    conn.execute("PRAGMA writable_schema = ON")
    conn.execute(
        "UPDATE sqlite_master SET sql = 'CREATE INDEX analyses_by_score ON analyses (created_at)'"
        " WHERE name = 'analyses_by_score'"
    )
    conn.commit()
    conn.close()


def test_a_fault_quick_check_lets_through_is_caught_by_the_drill_of_that_backup(
    make_ctx: Any, app_db: Path
) -> None:
    _swap_index_column(app_db)
    backup = run_task(make_ctx("backup"))
    assert backup.status is Status.OK, backup.message
    drill = run_task(make_ctx("verify-backup"))
    assert drill.status is Status.VIOLATION and drill.exit_code == 3
    assert drill.details["key"] == backup.details["key"]
    assert "integrity check failed: row 1 missing from index analyses_by_score" in drill.message


def _opens(monkeypatch: pytest.MonkeyPatch, refuse_direct: bool = False) -> list[int]:
    """The flags of every os.open; with `refuse_direct`, O_DIRECT fails as on tmpfs."""
    flags_seen: list[int] = []
    real_open = os.open

    def record(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        flags_seen.append(flags)
        if refuse_direct and flags & os.O_DIRECT:
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", record)
    return flags_seen


def _snapshot_larger_than_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: int = 8 << 20
) -> tuple[Path, bytes]:
    """A snapshot of `size` bytes as large as the memory at hand: too large to stay in the
    page cache, and room for 2 MiB of part buffers (a quarter of it)."""
    path = tmp_path / "snapshot.db"
    data = os.urandom(size)
    path.write_bytes(data)
    monkeypatch.setattr(memory_module, "available_memory", lambda: 8 << 20)
    fd = s3_upload.uncached_fd(path)
    if fd is None:
        pytest.skip(f"{tmp_path} does not support O_DIRECT")
    os.close(fd)
    return path, data


def test_a_part_is_read_whole_past_the_page_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A snapshot larger than the task's memory is no longer cached when it goes up: its
    parts are read with O_DIRECT (issue 15), not back through the cache; botocore can
    rewind the body to send it again."""
    path, data = _snapshot_larger_than_memory(tmp_path, monkeypatch)
    flags_seen = _opens(monkeypatch)
    reader = PartReader(path, 2 << 20)
    with reader.body(1 << 20, 2 << 20) as body:
        assert isinstance(body, BufferSlice) and len(body) == 2 << 20
        assert body.read(1000) + body.read() == data[1 << 20 : 3 << 20]
        body.seek(0)
        assert body.read() == data[1 << 20 : 3 << 20]
    reader.close()
    assert flags_seen[0] == os.O_RDONLY | os.O_DIRECT


def test_each_upload_thread_reads_its_parts_into_one_buffer_of_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new buffer per part cost 0.9 CPU s per GB in page faults (issue 15): each thread
    keeps one, and the buffers are freed when the upload ends."""
    path, data = _snapshot_larger_than_memory(tmp_path, monkeypatch)
    made: list[Any] = []

    def counted(size: int) -> Any:
        made.append(aligned_buffer(size))
        return made[-1]

    monkeypatch.setattr(s3_upload, "aligned_buffer", counted)
    reader = PartReader(path, 1 << 20, threads=2)

    def send(parts: range) -> None:
        for index in parts:
            with reader.body(index << 20, 1 << 20) as body:
                assert isinstance(body, BufferSlice)
                assert body.read() == data[index << 20 : (index + 1) << 20]

    send(range(4))
    assert len(made) == 1
    other = threading.Thread(target=send, args=(range(4, 8),))
    other.start()
    other.join()
    assert len(made) == 2
    reader.close()
    assert all(buffer.closed for buffer in made)


def test_a_part_of_a_snapshot_that_fits_in_memory_is_read_through_the_page_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The snapshot was just written and is still cached: O_DIRECT would first write its
    dirty pages out to disk, then read them back (1.4 CPU s more at 1 GB, issue 15)."""
    path = tmp_path / "snapshot.db"
    data = os.urandom(3 << 20)
    path.write_bytes(data)
    monkeypatch.setattr(memory_module, "available_memory", lambda: 2 * path.stat().st_size)
    flags_seen = _opens(monkeypatch)
    with PartReader(path, 2 << 20).body(1 << 20, 2 << 20) as body:
        assert isinstance(body, FileSlice) and body.read() == data[1 << 20 :]
        body.seek(-1000, io.SEEK_END)
        assert body.read() == data[-1000:]
    assert not any(flags & os.O_DIRECT for flags in flags_seen)


def test_a_last_part_of_any_length_is_read_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, data = _snapshot_larger_than_memory(tmp_path, monkeypatch, (6 << 20) + 1234)
    reader = PartReader(path, 2 << 20)
    parts = []
    for offset in range(0, len(data), 2 << 20):
        with reader.body(offset, min(2 << 20, len(data) - offset)) as body:
            assert isinstance(body, BufferSlice)
            parts.append(body.read())
    assert b"".join(parts) == data
    # A body still open when the thread reads the next one keeps its bytes.
    with reader.body(0, 2 << 20) as first, reader.body(6 << 20, 1234) as last:
        assert first.read() == data[: 2 << 20] and last.read() == data[6 << 20 :]
    reader.close()


def test_part_buffers_that_would_not_fit_or_a_refused_o_direct_stream_through_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An operator who sets large parts or many threads on a small task gets a slower
    upload, not one killed for its memory."""
    path, data = _snapshot_larger_than_memory(tmp_path, monkeypatch)
    for part_size, threads in [(4 << 20, 1), (1 << 20, 4)]:
        with PartReader(path, part_size, threads).body(0, 2 << 20) as body:
            assert isinstance(body, FileSlice) and body.read() == data[: 2 << 20]
    _opens(monkeypatch, refuse_direct=True)
    with PartReader(path, 2 << 20).body(0, 2 << 20) as body:
        assert isinstance(body, FileSlice) and body.read() == data[: 2 << 20]


def test_a_snapshot_shorter_than_its_part_fails_the_upload(tmp_path: Path) -> None:
    path = tmp_path / "snapshot.db"
    path.write_bytes(os.urandom(1 << 20))
    with (
        pytest.raises(OSError, match="ended inside the part"),
        PartReader(path, 2 << 20).body(0, 2 << 20),
    ):
        pass

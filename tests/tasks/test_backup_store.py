"""The backup store (tasks/backups/store.py) against moto: key codec, list, head, newest,
put_once and download."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from opsd.aws import AwsClients
from opsd.results import TaskError
from opsd.settings import Settings, load_settings
from tasks.backups.checksums import path_digests
from tasks.backups.store import BackupStore, key_time, normalise_prefix
from tasks.backups.upload import ObjectExists
from tests.tasks.backup_helpers import plant_backup
from tests.tasks.s3_faults import on_operation

NOW = datetime(2026, 12, 3, 6, 0, tzinfo=UTC)


@pytest.fixture
def store(aws: AwsClients, settings: Settings) -> BackupStore:
    return BackupStore.for_settings(settings, aws("s3"))


def _plant(store: BackupStore, name: str, seconds: int = 7) -> str:
    """A backup as the backup task writes it, recorded `seconds` into its key's minute."""
    key = store.prefix + name
    recorded = key_time(key) + timedelta(seconds=seconds)  # type: ignore[operator]
    plant_backup(store.s3, store.bucket, key, recorded)
    return key


def test_key_names_the_utc_minute_under_the_prefix_and_reads_back() -> None:
    taken = datetime(2026, 11, 24, 7, 5, 59, tzinfo=timezone(timedelta(hours=1)))
    assert BackupStore(None, "b").key(taken) == "backup-2026-11-24-06-05.db"
    key = BackupStore(None, "b", "db").key(taken)
    assert key == BackupStore(None, "b", "/db/").key(taken) == "db/backup-2026-11-24-06-05.db"
    assert key_time(key) == datetime(2026, 11, 24, 6, 5, tzinfo=UTC)
    assert key_time("backup-2026-11-24.db") is None
    assert key_time("db/backup-2026-11-24-06-05.db.partial") is None
    assert normalise_prefix("") == "" and normalise_prefix("a/b") == "a/b/"


def test_the_store_uses_the_prefix_settings_give() -> None:
    store = BackupStore.for_settings(load_settings(backup_prefix="db"), None)
    assert store.location == f"s3://{store.bucket}/db/" and store.bucket
    assert store.key(NOW) == "db/backup-2026-12-03-06-00.db"


def test_listing_is_newest_first_and_leaves_out_other_objects(store: BackupStore) -> None:
    for key in (
        "backup-2026-11-24-00-00.db",
        "backup-2026-11-24-06-00.db",
        "backup-2026-11-23-18-00.db",
        "notes.txt",
        "backup-latest.db",
        "backup-2026-11-24-07-00.db.partial",
        "old/backup-2026-11-25-00-00.db",
    ):
        store.s3.put_object(Bucket=store.bucket, Key=key, Body=b"x")

    assert [b.key for b in store.list()] == [
        "backup-2026-11-24-06-00.db",
        "backup-2026-11-24-00-00.db",
        "backup-2026-11-23-18-00.db",
    ]
    assert [b.key for b in store.list("2026-11-23")] == ["backup-2026-11-23-18-00.db"]
    old = BackupStore(store.s3, store.bucket, "old")
    assert [(b.key, b.size) for b in old.list()] == [("old/backup-2026-11-25-00-00.db", 1)]


def test_listing_a_missing_bucket_names_it(aws: AwsClients) -> None:
    with pytest.raises(TaskError, match="list backups in s3://nope/db/: NoSuchBucket"):
        BackupStore(aws("s3"), "nope", "db").list()


def test_head_is_none_for_a_missing_key_and_the_response_otherwise(store: BackupStore) -> None:
    key = _plant(store, "backup-2026-12-03-05-00.db")
    assert store.head("backup-2026-12-03-04-00.db") is None
    head = store.head(key)
    assert head is not None and head["Metadata"]["taken-at"] == "2026-12-03T05:00:07+00:00"
    with pytest.raises(TaskError, match="look up s3://nope/k: NoSuchBucket"):
        BackupStore(store.s3, "nope").head("k")


def test_newest_passes_over_suspect_objects_and_gives_the_recorded_time(
    store: BackupStore,
) -> None:
    ours = _plant(store, "backup-2026-12-03-05-00.db", seconds=41)
    store.s3.put_object(Bucket=store.bucket, Key="backup-2026-12-03-05-30.db", Body=b"planted")
    store.s3.put_object(Bucket=store.bucket, Key="backup-2026-12-03-23-00.db", Body=b"future")

    newest, passed_over = store.newest(NOW)

    assert newest is not None and newest.key == ours
    assert newest.recorded_at == datetime(2026, 12, 3, 5, 0, 41, tzinfo=UTC)
    assert [(s.key, s.suspect) for s in passed_over] == [
        ("backup-2026-12-03-23-00.db", "named for 2026-12-03 23:00 UTC, in the future"),
        ("backup-2026-12-03-05-30.db", "no backup metadata"),
    ]


def test_newest_of_this_month_takes_one_list_and_one_head(store: BackupStore) -> None:
    _plant(store, "backup-2026-10-01-00-00.db")
    ours = _plant(store, "backup-2026-12-01-00-00.db")
    lists = on_operation(store.s3, "ListObjectsV2", lambda _: None)
    heads = on_operation(store.s3, "HeadObject", lambda _: None)

    newest, _ = store.newest(NOW)

    assert newest is not None and newest.key == ours
    assert (len(lists), len(heads)) == (1, 1)


@pytest.mark.parametrize(
    ("now", "name"),
    [
        (datetime(2026, 1, 2, tzinfo=UTC), "backup-2025-12-31-23-00.db"),  # previous month
        (datetime(2026, 12, 3, tzinfo=UTC), "backup-2025-06-01-00-00.db"),  # whole prefix
    ],
)
def test_newest_looks_back_beyond_this_month(store: BackupStore, now: datetime, name: str) -> None:
    ours = _plant(store, name)
    newest, _ = store.newest(now)
    assert newest is not None and newest.key == ours


def test_newest_is_none_without_a_trusted_backup(store: BackupStore) -> None:
    assert store.newest(NOW) == (None, [])
    store.s3.put_object(Bucket=store.bucket, Key="backup-2026-11-30-00-00.db", Body=b"x")
    newest, passed_over = store.newest(NOW)
    assert newest is None
    assert [s.key for s in passed_over] == ["backup-2026-11-30-00-00.db"]


def test_newest_among_a_listing_heads_no_object_named_for_the_future(
    store: BackupStore,
) -> None:
    ours = _plant(store, "backup-2026-12-03-05-00.db")
    store.s3.put_object(Bucket=store.bucket, Key="backup-2099-01-01-00-00.db", Body=b"x")
    listed = store.list()
    heads = on_operation(store.s3, "HeadObject", lambda _: None)

    newest, passed_over = store.newest(NOW, among=listed)

    assert newest is not None and newest.key == ours
    assert [s.key for s in passed_over] == ["backup-2099-01-01-00-00.db"]
    assert len(heads) == 1


def test_put_once_writes_a_key_once_and_download_gives_its_bytes(
    store: BackupStore, tmp_path: Path
) -> None:
    source = tmp_path / "snapshot.db"
    source.write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 40)
    key = store.key(NOW)

    store.put_once(key, source, path_digests(source, 5 << 20), {"reason": "manual"})
    with pytest.raises(ObjectExists):
        store.put_once(key, source, path_digests(source, 5 << 20), {"reason": "scheduled"})

    head = store.head(key)
    assert head is not None and head["Metadata"] == {"reason": "manual"}
    assert head["ServerSideEncryption"] == "AES256"
    downloaded = store.download(key, tmp_path)
    assert downloaded.parent == tmp_path and downloaded.read_bytes() == source.read_bytes()
    assert [b.key for b in store.list()] == [key]


def test_download_of_a_missing_key_is_one_line_and_leaves_no_file(
    store: BackupStore, tmp_path: Path
) -> None:
    directory = tmp_path / "restore"
    directory.mkdir()
    with pytest.raises(TaskError, match="^download backup-x.db: NoSuchKey") as caught:
        store.download("backup-x.db", directory)
    assert "\n" not in str(caught.value)
    assert list(directory.iterdir()) == []

"""`opsd run` takes a backup at start only when the store holds none we took (issue 14.4)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from opsd.aws import AwsClients
from opsd.cli import backup_exists
from opsd.settings import Settings, load_settings
from opsd.state import utcnow
from tasks.backups.store import BackupStore
from tests.tasks.backup_helpers import plant_backup


@pytest.fixture
def in_db(monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("BACKUP_PREFIX", "db")
    return load_settings()


def test_a_backup_under_the_prefix_counts(in_db: Settings, aws: AwsClients) -> None:
    store = BackupStore.for_settings(in_db, aws("s3"))
    taken = utcnow() - timedelta(hours=1)
    plant_backup(store.s3, store.bucket, store.key(taken), taken)

    assert store.key(taken).startswith("db/backup-")
    assert backup_exists(in_db, aws)


def test_objects_that_are_not_our_backups_do_not_count(in_db: Settings, aws: AwsClients) -> None:
    s3, bucket = aws("s3"), in_db.s3_bucket_backups
    taken = utcnow() - timedelta(hours=1)
    s3.put_object(Bucket=bucket, Key="db/backup-notes.txt", Body=b"x")
    s3.put_object(Bucket=bucket, Key="db/backup-2099-01-01-00-00.db", Body=b"planted")
    s3.put_object(Bucket=bucket, Key=f"db/backup-{taken:%Y-%m-%d-%H-%M}.db", Body=b"no metadata")
    s3.put_object(Bucket=bucket, Key="db/backup-old/backup-2026-01-01-00-00.db", Body=b"x")
    plant_backup(s3, bucket, f"backup-{taken:%Y-%m-%d-%H-%M}.db", taken)  # outside the prefix

    assert not backup_exists(in_db, aws)


def test_a_store_that_cannot_be_listed_means_a_backup_at_start(
    settings: Settings, aws: AwsClients
) -> None:
    missing = settings.model_copy(update={"s3_bucket_backups": "no-such-bucket"})
    assert not backup_exists(missing, aws)

from pathlib import Path

from opsd.aws import AwsClients
from opsd.settings import Settings
from tasks.backups.download import DOWNLOAD_PREFIX, download_object
from tasks.backups.scratch_files import remove_quietly, scratch_file
from tests.tasks.test_scratch_files import scratch_file_of_a_killed_run


def test_download_removes_files_of_killed_downloads_but_not_live_ones(
    aws: AwsClients, settings: Settings, tmp_path: Path
) -> None:
    s3 = aws("s3")
    s3.put_object(Bucket=settings.s3_bucket_backups, Key="backup-x.db", Body=b"data" * 1000)
    target_dir = tmp_path / "data"
    target_dir.mkdir()
    abandoned = scratch_file_of_a_killed_run(target_dir, DOWNLOAD_PREFIX, ".tmp")
    abandoned.write_bytes(b"partial")
    in_use = scratch_file(target_dir, DOWNLOAD_PREFIX, ".tmp")  # held by a live download

    path = download_object(s3, settings.s3_bucket_backups, "backup-x.db", target_dir)

    assert not abandoned.exists()
    assert in_use.exists()
    assert path.read_bytes() == b"data" * 1000
    remove_quietly(path)
    remove_quietly(in_use)
    assert list(target_dir.iterdir()) == []

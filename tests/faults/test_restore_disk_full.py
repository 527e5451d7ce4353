"""A restore onto a disk that fills up: the download fails with ENOSPC, its temporary file is
removed and the live database is untouched.

Where this process may mount (root), the live database sits on a 2 MiB tmpfs and the backup
is larger than the free space: a real full disk, through `python -m tasks restore`.
Elsewhere (or with FAULTS_SIMULATE_ENOSPC=1), ENOSPC is simulated in-process at the
download's file writes.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from opsd.aws import AwsClients
from opsd.results import Status
from opsd.runner import TaskContext
from tests.conftest import create_app_database
from tests.faults.figures import record_figure
from tests.task_processes import (
    BUCKET,
    last_line,
    moto_endpoint,
    run_tasks_cli,
    settings_for,
    sha256_of,
    task_env,
)
from tests.tasks.backup_helpers import add_bulk, run_task

pytestmark = [pytest.mark.faults, pytest.mark.slow]
DISK_BYTES = 2 << 20


@contextmanager
def small_disk(directory: Path) -> Iterator[bool]:
    """Mount a 2 MiB tmpfs on `directory`; yields False when mounting is not permitted."""
    directory.mkdir(parents=True)
    mount = shutil.which("mount")
    tried = (
        subprocess.run(
            [mount, "-t", "tmpfs", "-o", f"size={DISK_BYTES}", "tmpfs", str(directory)],
            capture_output=True,
        )
        if mount and os.geteuid() == 0 and not os.environ.get("FAULTS_SIMULATE_ENOSPC")
        else None
    )
    if tried is None or tried.returncode != 0:
        yield False
        return
    try:
        yield True
    finally:
        subprocess.run(["umount", str(directory)], check=True)


class FillingFile:
    """A file object that accepts `room` bytes, then fails like a full disk."""

    def __init__(self, handle: Any, room: int) -> None:
        self._handle = handle
        self._room = room

    def write(self, data: bytes) -> int:
        if len(data) > self._room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self._room -= len(data)
        return int(self._handle.write(data))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._handle, name)

    def __enter__(self) -> FillingFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self._handle.close()


def test_a_restore_that_fills_the_disk_leaves_the_live_database_untouched(
    tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    with moto_endpoint(BUCKET) as endpoint:
        source = tmp_path / "source" / "app.db"
        env = task_env(endpoint, tmp_path, DATABASE_PATH=str(source))
        add_bulk(create_app_database(source, analyses=500), 4)  # larger than the small disk
        made = run_tasks_cli(env, "backup")
        assert made.returncode == 0, last_line(made.stderr + made.stdout)

        disk = tmp_path / "small-disk"
        with small_disk(disk) as mounted:
            live = create_app_database(disk / "app.db", analyses=100, seed=5)
            live_sha256 = sha256_of(live)
            if mounted:
                done = run_tasks_cli({**env, "DATABASE_PATH": str(live)}, "restore", "--yes")
                assert done.returncode == 1, done.stdout
                message = last_line(done.stderr)
            else:
                real_fdopen = os.fdopen
                monkeypatch.setattr(
                    "tasks.backups.download.os.fdopen",
                    lambda fd, mode: FillingFile(real_fdopen(fd, mode), DISK_BYTES),
                )
                settings = settings_for(endpoint, database_path=live)
                ctx = TaskContext(settings=settings, clients=AwsClients(settings), task="restore")
                try:
                    result = run_task(ctx, yes=True)
                finally:
                    ctx.close()
                assert result.status is Status.FAILED
                message = f"restore failed: {result.message}"
            assert "No space left on device" in message and "nothing was replaced" in message
            assert sorted(p.name for p in disk.iterdir()) == ["app.db"], list(disk.iterdir())
            assert sha256_of(live) == live_sha256
            if mounted:
                assert shutil.disk_usage(disk).used < DISK_BYTES // 2

    how = "a real 2 MiB tmpfs" if mounted else "simulated ENOSPC, no mount"
    record_figure(
        request.config, "faults", f"restore onto a full disk ({how}): {message}; live untouched"
    )

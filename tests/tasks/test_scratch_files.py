"""A task removes only scratch files that prove they are its own and abandoned (issue 12.5)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from opsd.results import Status
from opsd.settings import Settings
from tasks.backups.download import DOWNLOAD_PREFIX
from tasks.backups.scratch_files import OWNER_MARK, remove_abandoned, remove_quietly, scratch_file
from tasks.backups.snapshot import SNAPSHOT_PREFIX
from tests.tasks.backup_helpers import run_task

ROOT = Path(__file__).resolve().parents[2]
UNRELATED = (
    "backup-notes.db",
    "backup-2026-01-01-00-00.db",
    "backup-k3j4h5.db",
    ".download-report.tmp",
    ".download-x.tmp",
    f"{OWNER_MARK}{SNAPSHOT_PREFIX}not-hex-at-all.db",
)


def scratch_file_of_a_killed_run(directory: Path, prefix: str, suffix: str) -> Path:
    """A scratch file made by another process that ended without removing it."""
    code = (
        "import sys; from pathlib import Path; "
        "from tasks.backups.scratch_files import scratch_file; "
        "print(scratch_file(Path(sys.argv[1]), sys.argv[2], sys.argv[3]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(directory), prefix, suffix],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    return Path(done.stdout.strip())


def _plant(directory: Path) -> dict[str, bytes]:
    planted = {}
    for name in UNRELATED:
        planted[name] = f"someone else's {name}".encode()
        (directory / name).write_bytes(planted[name])
    return planted


def _still_there(directory: Path, planted: dict[str, bytes]) -> bool:
    return all((directory / n).read_bytes() == body for n, body in planted.items())


def test_backup_leaves_unrelated_files_named_like_backups_in_scratch(
    make_ctx: Any, app_db: Path, settings: Settings
) -> None:
    assert settings.scratch_dir is not None
    planted = _plant(settings.scratch_dir)
    killed = scratch_file_of_a_killed_run(settings.scratch_dir, SNAPSHOT_PREFIX, ".db")

    result = run_task(make_ctx("backup"))

    assert result.status is Status.OK, result.message
    assert _still_there(settings.scratch_dir, planted)
    assert not killed.exists()
    assert sorted(p.name for p in settings.scratch_dir.iterdir()) == sorted(planted)


def test_restore_leaves_unrelated_temporary_files_beside_its_target(
    make_ctx: Any, app_db: Path, tmp_path: Path
) -> None:
    assert run_task(make_ctx("backup")).status is Status.OK
    target_dir = tmp_path / "restored"
    target_dir.mkdir()
    planted = _plant(target_dir)
    killed = scratch_file_of_a_killed_run(target_dir, DOWNLOAD_PREFIX, ".tmp")

    result = run_task(make_ctx("restore"), to=target_dir / "copy.db")

    assert result.status is Status.OK, result.message
    assert _still_there(target_dir, planted)
    assert not killed.exists()
    assert sorted(p.name for p in target_dir.iterdir()) == sorted([*planted, "copy.db"])


def test_clean_up_keeps_live_files_and_what_only_looks_like_ours(tmp_path: Path) -> None:
    live = scratch_file(tmp_path, SNAPSHOT_PREFIX)
    killed = scratch_file_of_a_killed_run(tmp_path, SNAPSHOT_PREFIX, ".db")
    journal = killed.with_name(killed.name + "-wal")
    journal.write_bytes(b"wal")
    fifo = tmp_path / f"{OWNER_MARK}{SNAPSHOT_PREFIX}{'a' * 32}.db"
    os.mkfifo(fifo)
    link = tmp_path / f"{OWNER_MARK}{SNAPSHOT_PREFIX}{'b' * 32}.db"
    outside = tmp_path / "outside.db"
    outside.write_bytes(b"keep me")
    link.symlink_to(outside)

    removed = remove_abandoned(tmp_path, SNAPSHOT_PREFIX)

    assert removed == [killed]
    assert not killed.exists() and not journal.exists()
    assert live.exists() and fifo.exists() and link.is_symlink()
    assert outside.read_bytes() == b"keep me"
    remove_quietly(live)
    assert not live.exists()

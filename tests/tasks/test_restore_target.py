"""A restore touches only a regular file it may replace (issue 12.7), and the file it writes
keeps the mode and owner of the one it replaces (issue 16.3)."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path
from typing import Any

import pytest

from opsd.results import Status
from opsd.runner import execute, parse_command_line
from opsd.settings import Settings
from tasks.registry import TASKS
from tests.tasks.backup_helpers import run_task


@pytest.fixture
def backup_key(make_ctx: Any, app_db: Path) -> str:
    result = run_task(make_ctx("backup"))
    assert result.status is Status.OK, result.message
    return str(result.details["key"])


def _restore(ctx: Any, *argv: str) -> Any:
    """`python -m tasks restore ARGV` in this process: the options parsed as the CLI does."""
    spec = TASKS["restore"]
    return execute(spec, ctx, parse_command_line(["restore", *argv], TASKS)[1])


def _analyses(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT count(*) FROM analyses").fetchone()[0])
    finally:
        conn.close()


def _refused_in_one_line(result: Any, *words: str) -> None:
    assert result.failed and result.exit_code in (1, 2)
    assert "\n" not in result.message
    for word in words:
        assert word in result.message, result.message


def test_a_fifo_is_refused_even_with_force_and_left_as_it_is(
    make_ctx: Any, backup_key: str, tmp_path: Path
) -> None:
    (tmp_path / "pipes").mkdir()
    fifo = tmp_path / "pipes" / "pipe.db"
    os.mkfifo(fifo)

    result = _restore(make_ctx("restore"), "--to", str(fifo), "--force")

    _refused_in_one_line(result, "is a FIFO", "regular")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert sorted(p.name for p in fifo.parent.iterdir()) == ["pipe.db"]


def test_a_device_file_is_refused_even_with_force(
    make_ctx: Any, backup_key: str, tmp_path: Path
) -> None:
    device = tmp_path / "null"
    try:
        os.mknod(device, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("cannot make a device file here")

    result = _restore(make_ctx("restore"), "--to", str(device), "--force")

    _refused_in_one_line(result, "is a character device")
    assert stat.S_ISCHR(os.lstat(device).st_mode)


def test_a_symlinked_database_path_restores_the_file_it_names(
    make_ctx: Any, backup_key: str, settings: Settings, tmp_path: Path
) -> None:
    real_dir = tmp_path / "volume"
    real_dir.mkdir()
    real = real_dir / "app.db"
    settings.database_path.rename(real)
    settings.database_path.symlink_to(real)
    conn = sqlite3.connect(real)
    conn.execute("DELETE FROM analyses")
    conn.commit()
    conn.close()

    result = run_task(make_ctx("restore"), yes=True)

    assert result.status is Status.OK, result.message
    assert f"{real} (through the symlink {settings.database_path})" in result.message
    assert settings.database_path.is_symlink()
    assert Path(os.readlink(settings.database_path)) == real
    assert _analyses(real) == 200
    assert Path(result.details["kept"]).parent == real_dir


def test_a_dangling_symlink_is_refused(make_ctx: Any, backup_key: str, tmp_path: Path) -> None:
    link = tmp_path / "link.db"
    link.symlink_to(tmp_path / "missing" / "app.db")

    result = _restore(make_ctx("restore"), "--to", str(link), "--force")

    _refused_in_one_line(result, "does not exist")
    assert link.is_symlink() and not (tmp_path / "missing").exists()


def test_to_a_directory_writes_a_file_inside_it(
    make_ctx: Any, backup_key: str, tmp_path: Path
) -> None:
    existing = tmp_path / "existing"
    existing.mkdir()
    new = tmp_path / "new"

    into_existing = _restore(make_ctx("restore"), "--to", f"{existing}/")
    without_slash = _restore(make_ctx("restore"), "--to", str(existing), "--force")
    into_new = _restore(make_ctx("restore"), "--to", f"{new}/")

    assert into_existing.status is Status.OK, into_existing.message
    assert into_existing.details["target"] == str(existing / backup_key)
    assert without_slash.details["target"] == str(existing / backup_key)
    assert into_new.details["target"] == str(new / backup_key)
    assert _analyses(new / backup_key) == 200
    assert existing.is_dir() and new.is_dir()


def test_a_database_path_with_a_trailing_slash_is_refused(
    make_ctx: Any, backup_key: str, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "database_path", Path(f"{settings.database_path.parent}/"))

    result = run_task(make_ctx("restore"), yes=True)

    _refused_in_one_line(result, "is a directory")


def test_the_restored_database_keeps_the_mode_of_the_file_it_replaces(
    make_ctx: Any, backup_key: str, app_db: Path
) -> None:
    app_db.chmod(0o644)

    result = run_task(make_ctx("restore"), yes=True)

    assert result.status is Status.OK, result.message
    assert stat.S_IMODE(app_db.stat().st_mode) == 0o644


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give a file to another user")
def test_the_restored_database_keeps_the_owner_of_the_file_it_replaces(
    make_ctx: Any, backup_key: str, app_db: Path
) -> None:
    os.chown(app_db, 10001, 10001)
    app_db.chmod(0o640)

    result = run_task(make_ctx("restore"), yes=True)

    assert result.status is Status.OK, result.message
    info = app_db.stat()
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (10001, 10001, 0o640)

"""Putting a verified database file in place: keep what it replaces, then rename atomically."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
from pathlib import Path

from opsd.results import TaskError
from tasks.backups.download import sync_file
from tasks.backups.target import kind_of

# SQLite's companions of a database file; a stale one beside a new file would corrupt it.
JOURNAL_SUFFIXES = ("-journal", "-wal")
SHARED_MEMORY_SUFFIX = "-shm"


def pre_restore_path(target: Path, stamp: str) -> Path:
    return target.with_name(f"{target.name}.pre-restore-{stamp}")


def companions(path: Path) -> list[Path]:
    return [
        path.with_name(path.name + suffix)
        for suffix in (*JOURNAL_SUFFIXES, SHARED_MEMORY_SUFFIX)
        if path.with_name(path.name + suffix).exists()
    ]


def place_verified_file(verified: Path, target: Path, stamp: str) -> Path | None:
    """Replace `target` with `verified` (same directory) by one atomic rename.

    The current file is kept as `<target>.pre-restore-<stamp>` (a hard link, or a copy where
    links are not possible), with its journal beside it so that SQLite can still roll back an
    interrupted transaction in the kept copy. Returns the kept path, or None for a new file.
    """
    kept: Path | None = None
    current = _regular_file_or_none(target)
    if current is not None:
        _take_mode_and_owner(verified, target, current)
        kept = pre_restore_path(target, stamp)
        _keep(target, kept)
        for stale in companions(target):
            suffix = stale.name.removeprefix(target.name)
            try:
                if suffix == SHARED_MEMORY_SUFFIX:
                    stale.unlink()
                else:
                    os.replace(stale, kept.with_name(kept.name + suffix))
            except OSError as exc:
                raise TaskError(f"{target}: cannot move aside {stale.name}: {exc}") from None
    try:
        os.replace(verified, target)
    except OSError as exc:
        raise TaskError(f"{target}: rename failed, nothing replaced: {exc}") from None
    sync_file(target.parent)
    return kept


def _regular_file_or_none(target: Path) -> os.stat_result | None:
    """The target's status; a TaskError when something other than a regular file is there
    (it may have changed since the plan was made)."""
    try:
        info = os.lstat(target)
    except FileNotFoundError:
        return None
    kind = kind_of(info.st_mode) if not stat.S_ISLNK(info.st_mode) else "a symlink"
    if kind is not None:
        raise TaskError(f"{target}: is {kind} now; nothing replaced")
    return info


def _take_mode_and_owner(verified: Path, target: Path, current: os.stat_result) -> None:
    """The restored file keeps the permissions and owner of the file it replaces: the app
    (perhaps another user) must still be able to open its database."""
    try:
        os.chmod(verified, stat.S_IMODE(current.st_mode))
        mine = os.stat(verified)
        if (mine.st_uid, mine.st_gid) != (current.st_uid, current.st_gid):
            os.chown(verified, current.st_uid, current.st_gid)
    except OSError as exc:
        raise TaskError(
            f"{target}: cannot give the restored file its owner {current.st_uid}:"
            f"{current.st_gid} and mode {stat.S_IMODE(current.st_mode):o} "
            f"({exc.strerror or exc}; run as that user or root), nothing replaced"
        ) from None


def _keep(target: Path, kept: Path) -> None:
    if kept.exists():
        raise TaskError(f"{target}: {kept.name} already exists; try again in a second")
    try:
        os.link(target, kept)
    except OSError:
        _copy(target, kept)


def _copy(target: Path, kept: Path) -> None:
    """Where the file system has no hard links."""
    try:
        shutil.copy2(target, kept)
    except OSError as exc:
        with contextlib.suppress(FileNotFoundError):
            kept.unlink()
        raise TaskError(
            f"{target}: cannot keep the current database as {kept.name}, "
            f"nothing replaced: {exc.strerror or exc}"
        ) from None

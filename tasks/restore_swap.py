"""Putting a verified database file in place: keep what it replaces, then rename atomically."""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

from opsd.results import TaskError

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
    if target.exists():
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
                raise TaskError(
                    f"restore {target}: cannot move aside {stale.name}: {exc}"
                ) from None
    try:
        os.replace(verified, target)
    except OSError as exc:
        raise TaskError(f"restore {target}: rename failed, nothing replaced: {exc}") from None
    _sync_directory(target.parent)
    return kept


def _keep(target: Path, kept: Path) -> None:
    if kept.exists():
        raise TaskError(f"restore {target}: {kept.name} already exists; try again in a second")
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
            f"restore {target}: cannot keep the current database as {kept.name}, "
            f"nothing replaced: {exc.strerror or exc}"
        ) from None


def _sync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)

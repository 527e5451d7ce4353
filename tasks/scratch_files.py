"""Temporary files of a task run, locked so a later run can remove those of killed runs."""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
import threading
from pathlib import Path

# Scratch files in use by this process, each with an open descriptor holding an flock on
# it. A process killed with SIGKILL cannot remove its scratch file, but its lock dies with
# it: a later run removes the scratch files nobody holds (`remove_abandoned`).
_held: dict[Path, int] = {}
_held_guard = threading.Lock()
CLAIMING = ".claiming-"


def scratch_file(directory: Path | None, prefix: str, suffix: str = ".db") -> Path:
    """A new empty file for temporary work (SCRATCH_DIR, else the system temp dir), locked
    by this process until `remove_quietly(path)`."""
    if directory is not None:
        directory.mkdir(parents=True, exist_ok=True)
    while True:
        # Locked before it takes its real name, so no cleaner ever sees it unlocked.
        descriptor, name = tempfile.mkstemp(
            prefix=f"{CLAIMING}{prefix}", suffix=suffix, dir=directory
        )
        claiming = Path(name)
        path = claiming.with_name(claiming.name.removeprefix(CLAIMING))
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            os.link(claiming, path)
        except (FileExistsError, FileNotFoundError):
            os.close(descriptor)
            continue
        finally:
            with contextlib.suppress(FileNotFoundError):
                claiming.unlink()
        with _held_guard:
            _held[path] = descriptor
        return path


def remove_quietly(path: Path | None) -> None:
    """Remove a temporary file (and a journal SQLite may have left beside it)."""
    if path is None:
        return
    for leftover in (path, path.with_name(path.name + "-journal")):
        with contextlib.suppress(FileNotFoundError):
            leftover.unlink()
    with _held_guard:
        descriptor = _held.pop(path, None)
    if descriptor is not None:
        os.close(descriptor)


def remove_abandoned(directory: Path, prefix: str, suffix: str = ".db") -> list[Path]:
    """Remove the scratch files `scratch_file` made here whose process is gone (no lock)."""
    removed = []
    for path in sorted(directory.glob(f"{prefix}*{suffix}")) + sorted(
        directory.glob(f"{CLAIMING}{prefix}*{suffix}")
    ):
        try:
            descriptor = os.open(path, os.O_RDONLY)
        except (FileNotFoundError, IsADirectoryError):
            continue
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue  # its process is alive and still using it
        else:
            for leftover in (path, path.with_name(path.name + "-journal")):
                with contextlib.suppress(FileNotFoundError):
                    leftover.unlink()
            removed.append(path)
        finally:
            os.close(descriptor)
    return removed

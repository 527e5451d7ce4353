"""Temporary files of a task run, locked so a later run can remove those of killed runs.

A clean-up removes only what carries proof that a task made it and that its run is over:
the name is ours (`.opsd-scratch-<kind><32 hex digits><suffix>`, a name no other program
chooses), the file is a regular file owned by this user, and no process holds its lock.
Anything else in the directory, whatever its name looks like, is left alone (SCRATCH_DIR may
be the system temp directory, and a download's file sits beside the database it restores).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import secrets
import stat
import tempfile
import threading
from pathlib import Path

# Scratch files in use by this process, each with an open descriptor holding an flock on
# it. A process killed with SIGKILL cannot remove its scratch file, but its lock dies with
# it: a later run removes the scratch files nobody holds (`remove_abandoned`).
_held: dict[Path, int] = {}
_held_guard = threading.Lock()
OWNER_MARK = ".opsd-scratch-"
CLAIMING = ".opsd-claiming-"
_TOKEN_HEX = 32
# What SQLite may leave beside a database file it opened.
SQLITE_COMPANIONS = ("-journal", "-wal", "-shm")


def _name(mark: str, prefix: str, token: str, suffix: str) -> str:
    return f"{mark}{prefix}{token}{suffix}"


def _ours(mark: str, prefix: str, suffix: str) -> re.Pattern[str]:
    return re.compile(
        f"{re.escape(mark)}{re.escape(prefix)}[0-9a-f]{{{_TOKEN_HEX}}}{re.escape(suffix)}"
    )


def scratch_file(directory: Path | None, prefix: str, suffix: str = ".db") -> Path:
    """A new empty file for temporary work (SCRATCH_DIR, else the system temp dir), locked
    by this process until `remove_quietly(path)`."""
    folder = Path(tempfile.gettempdir()) if directory is None else directory
    folder.mkdir(parents=True, exist_ok=True)
    while True:
        token = secrets.token_hex(_TOKEN_HEX // 2)
        # Locked before it takes its real name, so no cleaner ever sees it unlocked.
        claiming = folder / _name(CLAIMING, prefix, token, suffix)
        path = folder / _name(OWNER_MARK, prefix, token, suffix)
        descriptor = os.open(claiming, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
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


def _remove_with_companions(path: Path) -> None:
    for leftover in (path, *(path.with_name(path.name + s) for s in SQLITE_COMPANIONS)):
        with contextlib.suppress(FileNotFoundError):
            leftover.unlink()


def remove_quietly(path: Path | None) -> None:
    """Remove a temporary file (and a journal, WAL or shared-memory file SQLite may have
    left beside it)."""
    if path is None:
        return
    _remove_with_companions(path)
    with _held_guard:
        descriptor = _held.pop(path, None)
    if descriptor is not None:
        os.close(descriptor)


def remove_abandoned(directory: Path, prefix: str, suffix: str = ".db") -> list[Path]:
    """Remove the scratch files `scratch_file` made here whose process is gone (no lock)."""
    patterns = [_ours(OWNER_MARK, prefix, suffix), _ours(CLAIMING, prefix, suffix)]
    removed = []
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return []
    for name in names:
        if not any(pattern.fullmatch(name) for pattern in patterns):
            continue
        path = directory / name
        if _abandoned_and_ours(path):
            _remove_with_companions(path)
            removed.append(path)
    return removed


def _abandoned_and_ours(path: Path) -> bool:
    """A regular file of this user that no live process holds locked."""
    try:
        # No following a link, no blocking on a FIFO: the name alone proves nothing.
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ELOOP, errno.EISDIR, errno.EACCES, errno.ENXIO):
            return False
        raise
    try:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid():
            return False
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # its process is alive and still using it
        return True
    finally:
        os.close(descriptor)

"""One streaming GET of a backup object into a temporary file."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from botocore.exceptions import BotoCoreError, ClientError

from opsd.aws import describe_aws_error
from opsd.results import TaskError
from tasks.backups.scratch_files import remove_abandoned, remove_quietly, scratch_file

CHUNK = 1 << 20
DOWNLOAD_PREFIX = "download-"
DOWNLOAD_SUFFIX = ".tmp"


class ScratchWriteError(TaskError):
    """The download could not be written here (disk full, read-only, no permission): a
    fault of this machine, not of the backup."""


class ProgressLine:
    """`restoring backup-….db  312.0/1024.0 MB  30%` rewritten in place on a terminal."""

    def __init__(self, label: str, total: int, stream: TextIO | None = None) -> None:
        self._label = label
        self._total = max(total, 1)
        self._stream = stream or sys.stderr
        self._shown_at = 0.0

    def update(self, done: int, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - self._shown_at < 0.2:
            return
        self._shown_at = now
        mb = 1 << 20
        line = (
            f"\r{self._label}  {done / mb:.1f}/{self._total / mb:.1f} MB  "
            f"{100 * done // self._total:3d}%"
        )
        self._stream.write(line + ("\n" if final else ""))
        self._stream.flush()


def progress_on_terminal(label: str, total: int) -> ProgressLine | None:
    return ProgressLine(label, total) if sys.stderr.isatty() else None


def download_object(
    s3: Any,
    bucket: str,
    key: str,
    directory: Path,
    *,
    progress: ProgressLine | None = None,
    check_stop: Callable[[], None] = lambda: None,
    durable: bool = True,
) -> Path:
    """Stream `key` into a new temporary file in `directory` and return it. Its sha256 is
    checked afterwards (`backup_checks.check_download`), beside the integrity check: here
    the cores are busy enough with the transfer.

    The file sits beside its final place so that the later rename is atomic; with
    `durable=False` the caller syncs it (`sync_file`) or does not need it on disk. On any failure
    (no space, read-only directory, network, SIGTERM) the temporary file is removed; the
    files of downloads whose process was killed are removed here before starting.
    """
    temp: Path | None = None
    done = 0
    try:
        remove_abandoned_downloads(directory)
        temp = scratch_file(directory, DOWNLOAD_PREFIX, DOWNLOAD_SUFFIX)
        with os.fdopen(os.open(temp, os.O_WRONLY | os.O_TRUNC), "wb") as out:
            response = s3.get_object(Bucket=bucket, Key=key)
            for chunk in response["Body"].iter_chunks(CHUNK):
                out.write(chunk)
                done += len(chunk)
                if progress:
                    progress.update(done)
                check_stop()
            out.flush()
            if durable:
                os.fsync(out.fileno())
        if progress:
            progress.update(done, final=True)
    except (BotoCoreError, ClientError) as exc:
        remove_quietly(temp)
        raise TaskError(describe_aws_error(f"download {key}", exc)) from exc
    except OSError as exc:
        remove_quietly(temp)
        raise ScratchWriteError(
            f"download {key} into {directory}: {exc.strerror or exc} (nothing was replaced)"
        ) from None
    except BaseException:
        remove_quietly(temp)
        raise
    return temp


def remove_abandoned_downloads(directory: Path) -> list[Path]:
    """Temporary files of downloads killed before they could clean up (only files that
    prove they are ours: see scratch_files)."""
    return remove_abandoned(directory, DOWNLOAD_PREFIX, DOWNLOAD_SUFFIX)


def sync_file(path: Path) -> None:
    """fsync of a file, or of a directory (a rename in it made durable)."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)

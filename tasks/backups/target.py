"""Which file a restore may write: a regular file (or none yet), never a device, FIFO or
directory; a symlink is followed to the file it names, and said so."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from opsd.results import UsageError

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
)


@dataclass(frozen=True)
class RestoreTarget:
    path: Path  # the file to write: absolute, no symlink in its last part
    given: str  # as the user (or DATABASE_PATH) named it
    link: Path | None = None  # the symlink that named `path`, if one did

    @property
    def exists(self) -> bool:
        return self.path.exists()

    def describe(self) -> str:
        return f"{self.path} (through the symlink {self.link})" if self.link else str(self.path)


def kind_of(mode: int) -> str | None:
    """What a file that is not a regular file is, for a message; None for a regular file."""
    for test, kind in _KINDS:
        if test(mode):
            return kind
    return None if stat.S_ISREG(mode) else "not a regular file"


def resolve_target(given: str, option: str, default_name: str) -> RestoreTarget:
    """The file `given` names, checked. `option` names where it came from in messages
    ('--to', 'DATABASE_PATH'); a directory given with a trailing slash, or an existing
    directory given to --to, means `default_name` inside it (as cp does)."""
    path = Path(given).expanduser()
    if option == "--to" and (given.endswith("/") or path.is_dir()):
        path = path / default_name
    elif given.endswith("/"):
        raise UsageError(f"{option} {given}: names a directory; name the database file")
    path = Path(os.path.abspath(path))
    link: Path | None = None
    if path.is_symlink():
        link = path
        try:
            path = Path(os.path.realpath(path, strict=True))
        except FileNotFoundError:
            raise UsageError(
                f"{option} {given}: a symlink to {os.readlink(link)}, which does not exist; "
                "name the database file itself"
            ) from None
        except OSError as exc:
            raise UsageError(f"{option} {given}: cannot follow the symlink: {exc}") from None
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return RestoreTarget(path, given, link)
    except OSError as exc:
        raise UsageError(f"{option} {given}: {exc.strerror or exc}") from None
    kind = kind_of(info.st_mode)
    if kind is not None:
        raise UsageError(
            f"{option} {given}: is {kind}; a restore writes only a regular database file"
        )
    return RestoreTarget(path, given, link)

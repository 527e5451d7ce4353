"""What the embedded AWS endpoint remembers across restarts of `opsd run` (local mode only).

moto keeps every service's state in memory, in one `BackendDict` per service. The endpoint
saves the backends of the services local mode uses to one file (`state.pickle` beside its
certificate) a moment after any request that may have changed them, and once more when it
stops; it loads that file at its next start. The file is replaced atomically (written beside,
flushed, renamed), so a killed endpoint leaves the previous complete state; a file that cannot
be loaded (damaged, or written by another moto version) is set aside with a one-line warning
and the endpoint starts empty.
"""

from __future__ import annotations

import os
import pickle
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from moto.backends import get_backend

from opsd.local_aws import SET_ASIDE_MARK

# S3 with objects and metadata, log groups, the topic, the budget, metric data, and the
# Cost Explorer answers the budget poll reads.
PERSISTED_SERVICES = ("s3", "logs", "sns", "budgets", "cloudwatch", "ce")
Snapshot = dict[str, list[tuple[str, str, Any]]]


class SharedExclusiveLock:
    """Requests share it; taking a snapshot excludes them (moto's dicts change under a request)."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._sharers = 0
        self._exclusive = False

    @contextmanager
    def shared(self) -> Iterator[None]:
        with self._condition:
            self._condition.wait_for(lambda: not self._exclusive)
            self._sharers += 1
        try:
            yield
        finally:
            with self._condition:
                self._sharers -= 1
                self._condition.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._condition:
            self._condition.wait_for(lambda: not self._exclusive)
            self._exclusive = True
            self._condition.wait_for(lambda: self._sharers == 0)
        try:
            yield
        finally:
            with self._condition:
                self._exclusive = False
                self._condition.notify_all()


def capture() -> Snapshot:
    """(account, region, backend) of each persisted service, as moto holds them now."""
    return {
        service: list(get_backend(service).iter_backends())  # type: ignore[arg-type]
        for service in PERSISTED_SERVICES
    }


def install(snapshot: Snapshot) -> None:
    for service, backends in snapshot.items():
        if service not in PERSISTED_SERVICES:
            continue
        backend_dict = get_backend(service)  # type: ignore[arg-type]
        for account, region, backend in backends:
            backend_dict[account][region] = backend


def write_atomically(path: Path, data: bytes) -> None:
    partial = path.with_name(f".{path.name}.partial")
    with partial.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def set_aside(path: Path, reason: str) -> None:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    target = path.with_name(f"{path.name}{SET_ASIDE_MARK}{stamp}")
    os.replace(path, target)
    print(
        f"local aws: the saved state {path} cannot be loaded ({reason}); set aside as "
        f"{target.name}, starting empty",
        file=sys.stderr,
        flush=True,
    )


def load(path: Path) -> bool:
    """Installs the state saved in `path`; False (and the file set aside) when unreadable."""
    if not path.exists():
        return False
    try:
        snapshot = pickle.loads(path.read_bytes())
        if not isinstance(snapshot, dict):
            raise TypeError(f"holds a {type(snapshot).__name__}, not a snapshot")
        install(snapshot)
    except Exception as exc:
        set_aside(path, f"{type(exc).__name__}: {exc}")
        return False
    return True


class StateKeeper:
    """Saves the persisted services to `path` when a request may have changed them."""

    def __init__(self, path: Path, interval_s: float = 2.0) -> None:
        self.path = path
        self.interval_s = interval_s
        self.lock = SharedExclusiveLock()
        self._changed = threading.Event()
        self._stopped = threading.Event()
        self._one_save_at_a_time = threading.Lock()
        self._thread = threading.Thread(target=self._save_when_changed, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def changed(self) -> None:
        self._changed.set()

    def save(self) -> None:
        with self._one_save_at_a_time:
            with self.lock.exclusive():
                self._changed.clear()
                data = pickle.dumps(capture(), protocol=pickle.HIGHEST_PROTOCOL)
            write_atomically(self.path, data)

    def stop(self) -> None:
        """The last save; requests still arriving wait for it and are not saved."""
        self._stopped.set()
        self.save()

    def _save_when_changed(self) -> None:
        while not self._stopped.wait(self.interval_s):
            if self._changed.is_set():
                try:
                    self.save()
                except Exception as exc:  # the endpoint goes on; the next change retries
                    print(f"local aws: cannot save the state: {exc}", file=sys.stderr, flush=True)

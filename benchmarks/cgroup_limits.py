"""A cgroup v1 with production's limits (0.25 vCPU, 512 MB) for one measured process tree.

ECS runs each task at 0.25 vCPU and 0.5 GB. Here a contender runs in its own cgroup with
`cpu.cfs_quota_us` = 25000 of `cpu.cfs_period_us` = 100000 and `memory.limit_in_bytes`
= 512M; only the contender's process tree joins it (benchmarks/measure.py --cgroup), never
the moto server or the harness. Each cgroup is made as a child of the harness's own cgroup
in each controller (so limits above it still hold) and removed afterwards.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

V1_ROOT = Path("/sys/fs/cgroup")
CONTROLLERS = ("cpu", "memory")
CPU_PERIOD_US = 100_000
CPU_QUOTA_US = 25_000
MEMORY_LIMIT_BYTES = 512 << 20
_names = itertools.count()


@dataclass(frozen=True)
class CgroupFigures:
    """What the kernel counted for one run in its cgroup."""

    throttled_s: float
    memory_peak_bytes: int
    memory_failcnt: int
    oom_kills: int


def own_cgroup(controller: str, proc_cgroup: Path = Path("/proc/self/cgroup")) -> Path | None:
    """This process's cgroup v1 directory for `controller`, or None without one."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            return V1_ROOT / controller / path.lstrip("/")
    return None


def unavailable_reason() -> str | None:
    """Why a limited cgroup cannot be made here (None: it can)."""
    for controller in CONTROLLERS:
        parent = own_cgroup(controller)
        if parent is None or not (parent / "cgroup.procs").exists():
            return f"no cgroup v1 {controller} controller mounted at {V1_ROOT / controller}"
        if not os.access(parent, os.W_OK):
            return f"{parent} is not writable (needs root, or a delegated cgroup)"
    return None


@contextlib.contextmanager
def limited_cgroup(
    cpu_quota_us: int = CPU_QUOTA_US, memory_limit_bytes: int = MEMORY_LIMIT_BYTES
) -> Iterator[LimitedCgroup]:
    """A fresh cgroup in each controller with the limits set; removed on the way out."""
    name = f"bench-{os.getpid()}-{next(_names)}"
    made: list[Path] = []
    try:
        for controller in CONTROLLERS:
            parent = own_cgroup(controller)
            assert parent is not None, unavailable_reason()
            directory = parent / name
            directory.mkdir()
            made.append(directory)
        cpu, memory = made
        (cpu / "cpu.cfs_period_us").write_text(str(CPU_PERIOD_US))
        (cpu / "cpu.cfs_quota_us").write_text(str(cpu_quota_us))
        (memory / "memory.limit_in_bytes").write_text(str(memory_limit_bytes))
        yield LimitedCgroup(cpu, memory)
    finally:
        for directory in reversed(made):
            _remove(directory)


@dataclass(frozen=True)
class LimitedCgroup:
    cpu: Path
    memory: Path

    @property
    def directories(self) -> tuple[Path, Path]:
        return self.cpu, self.memory

    def figures(self) -> CgroupFigures:
        stat = _key_values(self.cpu / "cpu.stat")
        oom = _key_values(self.memory / "memory.oom_control")
        return CgroupFigures(
            throttled_s=stat.get("throttled_time", 0) / 1e9,
            memory_peak_bytes=int((self.memory / "memory.max_usage_in_bytes").read_text()),
            memory_failcnt=int((self.memory / "memory.failcnt").read_text()),
            oom_kills=oom.get("oom_kill", 0),
        )


def _key_values(path: Path) -> dict[str, int]:
    pairs = (line.split() for line in path.read_text().splitlines())
    return {pair[0]: int(pair[1]) for pair in pairs if len(pair) == 2 and pair[1].isdigit()}


def _remove(directory: Path) -> None:
    """rmdir, once no process is left in it (the measured tree has exited by now)."""
    try:
        directory.rmdir()
    except FileNotFoundError:
        return
    except OSError as exc:
        if exc.errno != errno.EBUSY:
            raise
        left = (directory / "cgroup.procs").read_text().split()
        raise RuntimeError(f"cgroup {directory} still holds processes {left}") from exc

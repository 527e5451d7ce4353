"""How much memory this process still has at hand, and whether a file fits in it: what
decides between reading a file through the page cache and reading it past it."""

from __future__ import annotations

from pathlib import Path

_CGROUP_ROOT = Path("/sys/fs/cgroup")
_PROC_CGROUP = Path("/proc/self/cgroup")


def fits_in_memory(size: int) -> bool:
    """Whether a file of `size` bytes stays in the page cache while it is read again: it
    takes at most half the memory at hand."""
    return size <= available_memory() // 2


def available_memory() -> int:
    """Bytes this process could still fill: the kernel's MemAvailable, capped by what its
    cgroup (an ECS task's memory) has left; 0 where neither can be read."""
    meminfo = Path("/proc/meminfo")
    available = 0
    if meminfo.exists():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                available = int(line.split()[1]) * 1024
    for limit, used in _cgroup_memory_files():
        if limit.exists() and used.exists() and (text := limit.read_text().strip()).isdigit():
            available = min(available, int(text) - int(used.read_text()))
    return max(available, 0)


def _cgroup_memory_files() -> list[tuple[Path, Path]]:
    """(limit, usage) of this process's own memory cgroup, v2 then v1, as /proc/self/cgroup
    names it (an ECS task sees its own at the root of the mount; a process in a nested
    cgroup, deeper), and of the mount's root."""
    places = [Path("."), Path(".")]
    try:
        lines = _PROC_CGROUP.read_text().splitlines()
    except OSError:
        lines = []
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "":
            places[0] = Path(path.lstrip("/"))
        elif "memory" in controllers.split(","):
            places[1] = Path(path.lstrip("/"))
    v2, v1 = _CGROUP_ROOT / places[0], _CGROUP_ROOT / "memory" / places[1]
    found = [
        (v2 / "memory.max", v2 / "memory.current"),
        (v1 / "memory.limit_in_bytes", v1 / "memory.usage_in_bytes"),
    ]
    return list(
        dict.fromkeys(
            [
                *found,
                (_CGROUP_ROOT / "memory.max", _CGROUP_ROOT / "memory.current"),
                (
                    _CGROUP_ROOT / "memory" / "memory.limit_in_bytes",
                    _CGROUP_ROOT / "memory" / "memory.usage_in_bytes",
                ),
            ]
        )
    )

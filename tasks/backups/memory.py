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
    cgroup (an ECS task's memory) has left; 0 where neither can be read. In either, the
    page cache counts as free, as the kernel would reclaim it: the copy just written and
    the database it was read from are cached, and counted as used they would make a
    200 MB snapshot look too large for 512 MB (benchmarks/RESULTS.md, the 12:09 run of
    2026-12-04)."""
    meminfo = Path("/proc/meminfo")
    available = 0
    if meminfo.exists():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                available = int(line.split()[1]) * 1024
    for limit, used, stat in _cgroup_memory_files():
        if limit.exists() and used.exists() and (text := limit.read_text().strip()).isdigit():
            in_use = int(used.read_text()) - _page_cache(stat)
            available = min(available, int(text) - in_use)
    return max(available, 0)


def _page_cache(stat: Path) -> int:
    """Bytes of a cgroup's usage that are file pages (memory.stat: v1's hierarchical
    total_*_file, else v2's *_file), which the kernel reclaims before it fails an
    allocation; 0 where the file cannot be read."""
    try:
        lines = stat.read_text().splitlines()
    except OSError:
        return 0
    counts = dict(line.split(maxsplit=1) for line in lines if " " in line)
    return sum(
        int(counts.get(f"total_{kind}", counts.get(kind, "0")))
        for kind in ("inactive_file", "active_file")
    )


def _cgroup_memory_files() -> list[tuple[Path, Path, Path]]:
    """(limit, usage, stat) of this process's own memory cgroup, v2 then v1, as
    /proc/self/cgroup names it (an ECS task sees its own at the root of the mount; a
    process in a nested cgroup, deeper), and of the mount's root."""
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
    v2_root, v1_root = _CGROUP_ROOT, _CGROUP_ROOT / "memory"
    return list(
        dict.fromkeys(
            (folder / limit, folder / usage, folder / "memory.stat")
            for folder, limit, usage in (
                (v2, "memory.max", "memory.current"),
                (v1, "memory.limit_in_bytes", "memory.usage_in_bytes"),
                (v2_root, "memory.max", "memory.current"),
                (v1_root, "memory.limit_in_bytes", "memory.usage_in_bytes"),
            )
        )
    )

"""The memory at hand, which decides between reading through the page cache and past it."""

import os
from pathlib import Path

import pytest

import tasks.backups.memory as memory_module


def test_available_memory_is_read_from_the_kernel() -> None:
    assert (
        0
        < memory_module.available_memory()
        <= os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    )


def test_available_memory_is_capped_by_this_processs_own_nested_cgroup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A task in a nested cgroup v1 (/proc/self/cgroup names it) is held to that cgroup's
    limit, not to the unlimited root of the mount."""
    proc = tmp_path / "proc-cgroup"
    proc.write_text("5:cpu,cpuacct:/\n4:memory:/ecs/task-1\n0::/\n")
    own = tmp_path / "memory" / "ecs" / "task-1"
    own.mkdir(parents=True)
    (own / "memory.limit_in_bytes").write_text(f"{512 << 20}\n")
    (own / "memory.usage_in_bytes").write_text(f"{100 << 20}\n")
    (tmp_path / "memory" / "memory.limit_in_bytes").write_text("9223372036854771712\n")
    (tmp_path / "memory" / "memory.usage_in_bytes").write_text(f"{3 << 30}\n")
    monkeypatch.setattr(memory_module, "_PROC_CGROUP", proc)
    monkeypatch.setattr(memory_module, "_CGROUP_ROOT", tmp_path)
    assert memory_module.available_memory() == 412 << 20


def _own_cgroup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, version: int, stat: str | None
) -> None:
    """A task's memory cgroup at the root of the mount: 512 MB, 400 MB of it in use."""
    if version == 1:
        folder, limit, usage = tmp_path / "memory", "memory.limit_in_bytes", "memory.usage_in_bytes"
        proc = "4:memory:/\n0::/\n"
    else:
        folder, limit, usage = tmp_path, "memory.max", "memory.current"
        proc = "0::/\n"
    folder.mkdir(exist_ok=True)
    (tmp_path / "proc-cgroup").write_text(proc)
    (folder / limit).write_text(f"{512 << 20}\n")
    (folder / usage).write_text(f"{400 << 20}\n")
    if stat is not None:
        (folder / "memory.stat").write_text(stat)
    monkeypatch.setattr(memory_module, "_PROC_CGROUP", tmp_path / "proc-cgroup")
    monkeypatch.setattr(memory_module, "_CGROUP_ROOT", tmp_path)


@pytest.mark.parametrize(
    ("version", "stat"),
    [
        (1, f"cache {300 << 20}\ninactive_file 1\nactive_file 1\n"
            f"total_inactive_file {200 << 20}\ntotal_active_file {100 << 20}\n"),
        (2, f"anon {100 << 20}\nfile {300 << 20}\ninactive_file {200 << 20}\n"
            f"active_file {100 << 20}\n"),
    ],
    ids=["cgroup-v1", "cgroup-v2"],
)  # fmt: skip
def test_the_page_cache_of_a_cgroup_counts_as_memory_at_hand(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, version: int, stat: str
) -> None:
    """After the copy, a 200 MB snapshot and the database it came from fill the cache of a
    512 MB task; the kernel would drop the database's pages first, so the snapshot still
    fits, and is read again through the cache rather than from the disk."""
    _own_cgroup(tmp_path, monkeypatch, version, stat)
    assert memory_module.available_memory() == 412 << 20
    assert memory_module.fits_in_memory(200 << 20)
    assert not memory_module.fits_in_memory(300 << 20)


def test_without_a_memory_stat_the_whole_usage_counts_as_taken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _own_cgroup(tmp_path, monkeypatch, 1, None)
    assert memory_module.available_memory() == 112 << 20

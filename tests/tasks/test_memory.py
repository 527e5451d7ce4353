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

"""The measuring helpers the benchmarks rely on."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from benchmarks import cgroup_limits
from benchmarks.app_database import format_size, generate_app_database, parse_size
from benchmarks.harness import BenchmarkError, percentile, run_measured
from opsd.database import connect, integrity_errors, table_row_counts


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]

    assert percentile(values, 0.50) == 50.0
    assert percentile(values, 0.99) == 99.0
    assert percentile([3.0], 0.99) == 3.0


def test_sizes_parse_in_decimal_and_binary_units() -> None:
    assert parse_size("100MB") == 100_000_000
    assert parse_size("1GB") == 1_000_000_000
    assert parse_size("4MiB") == 4 * 1024 * 1024
    assert format_size(parse_size("1GB")) == "1GB"


def test_a_size_without_a_number_is_refused_with_the_text() -> None:
    with pytest.raises(ValueError, match="'lots'"):
        parse_size("lots")


def test_measured_run_reports_the_childs_memory_not_the_harness(tmp_path: Path) -> None:
    ballast = b"x" * (300 * 1024 * 1024)  # the harness grows; its child must not inherit it
    small = run_measured([sys.executable, "-c", "pass"], log_path=tmp_path / "small.log")
    large = run_measured(
        [sys.executable, "-c", "b = b'x' * (200 * 1024 * 1024)"],
        log_path=tmp_path / "large.log",
    )
    del ballast

    assert small.peak_rss_bytes < 60 * 1024 * 1024
    assert large.peak_rss_bytes > 200 * 1024 * 1024
    assert small.wall_s > 0


def test_each_measured_run_is_reported_as_it_ends(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = run_measured([sys.executable, "-c", "pass"], log_path=tmp_path / "logs" / "ours-2.log")
    expected = f"  {tmp_path.name}/ours-2: {run.wall_s:.2f} s, {run.cpu_s:.2f} CPU s\n"
    assert capsys.readouterr().err == expected


def test_measured_run_counts_the_cpu_seconds_of_the_whole_tree(tmp_path: Path) -> None:
    spin = "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass"
    child = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {spin!r}])"
    run = run_measured([sys.executable, "-c", child], log_path=tmp_path / "spin.log")
    assert run.cpu_s >= 0.3  # the grandchild's spinning included


@pytest.mark.skipif(
    cgroup_limits.unavailable_reason() is not None,
    reason=f"no writable cgroup v1 here: {cgroup_limits.unavailable_reason()}",
)
def test_a_run_in_a_limited_cgroup_is_held_to_its_cpu_quota_and_the_cgroup_goes_away(
    tmp_path: Path,
) -> None:
    spin = "import time\nend = time.process_time() + 0.2\nwhile time.process_time() < end: pass"
    with cgroup_limits.limited_cgroup() as cgroup:
        run = run_measured(
            [sys.executable, "-c", spin], log_path=tmp_path / "spin.log", cgroups=cgroup.directories
        )
        figures = cgroup.figures()
        directories = cgroup.directories
    assert run.wall_s >= 2 * run.cpu_s  # 0.25 of a CPU at most, less its first period
    assert figures.throttled_s > 0 and figures.memory_peak_bytes > 0
    assert not any(directory.exists() for directory in directories)


def test_a_failing_command_raises_with_its_output(tmp_path: Path) -> None:
    with pytest.raises(BenchmarkError, match="exited 3: boom"):
        run_measured(
            [sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"],
            log_path=tmp_path / "fail.log",
        )


def test_generated_database_reaches_its_size_in_rollback_journal_mode(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    generate_app_database(path, 2_000_000)

    assert path.stat().st_size >= 2_000_000
    conn = connect(path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        assert integrity_errors(conn) == []
        counts = table_row_counts(conn)
        assert counts["drawings"] == counts["analyses"] > 1_000
    finally:
        conn.close()

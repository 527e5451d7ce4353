"""The app under concurrent uploads: `python -m app serve` in its own process (moto's server
behind it), N httpx async clients uploading 1024×1024 drawings in a loop for a fixed time.
Zero 5xx and zero transport errors; p50/p95 latency and peak RSS (VmHWM) reported; the app
stays under 450 MB. Reuses the app benchmark's load driver (benchmarks/bench_app.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.bench_app import measure_load
from benchmarks.harness import BenchOptions, percentile
from tests.faults.figures import record_figure
from tests.task_processes import trials

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
CLIENTS = trials(full=20, under_ci=4, variable="APP_LOAD_CLIENTS")
SECONDS = trials(full=60, under_ci=10, variable="APP_LOAD_SECONDS")
RSS_LIMIT_MB = 450


def test_the_app_serves_concurrent_uploads_without_errors_within_its_memory(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    options = BenchOptions(sizes=[], repeat=1, tiny=False, work_dir=tmp_path)
    load = measure_load(options, CLIENTS, float(SECONDS))

    statuses: dict[str, int] = load["statuses"]  # type: ignore[assignment]
    latencies: list[float] = load["latencies"]  # type: ignore[assignment]
    uploads = sum(statuses.values())
    assert uploads > 0
    assert statuses == {"201": uploads}, statuses  # no 5xx, no refusals, no transport errors
    peak_mb = int(load["peak_rss"]) / 2**20  # type: ignore[call-overload]
    assert peak_mb < RSS_LIMIT_MB, f"peak RSS {peak_mb:.0f} MiB"
    record_figure(
        request.config,
        "load",
        f"app load: {CLIENTS} clients for {SECONDS} s: {uploads} uploads "
        f"({uploads / SECONDS:.1f}/s), 5xx: 0, p50 {percentile(latencies, 0.5) * 1000:.0f} ms, "
        f"p95 {percentile(latencies, 0.95) * 1000:.0f} ms, peak RSS {peak_mb:.0f} MiB "
        f"(limit {RSS_LIMIT_MB})",
    )

"""The app stays inside its 0.5 GB task: the production command (Dockerfile.prod's CMD and
ENV) in a 512 MB cgroup v1 memory controller, 50 concurrent maximum-size uploads of each
accepted format. No OOM kill, the worker's peak RSS ≤ 450 MB, every upload answered 201 or
503 with Retry-After. Uses the memory benchmark's driver (benchmarks/bench_app_memory.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.bench_app_memory import (
    DRAWINGS,
    FORMATS,
    MODELS,
    RSS_TARGET_MB,
    largest_upload,
    measure_contender,
)
from benchmarks.local_s3 import LocalS3
from benchmarks.production_app import ROOT, MemoryCgroup
from tests.faults.figures import record_figure

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
CLIENTS = 50


@pytest.mark.skipif(
    not MemoryCgroup.available(), reason="needs a writable cgroup v1 memory controller"
)
def test_fifty_concurrent_maximum_uploads_of_each_format_stay_inside_512_mb(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    uploads = {fmt: largest_upload(fmt) for fmt in FORMATS}
    with LocalS3(tmp_path / "moto.log", bucket=DRAWINGS) as s3:
        s3.client().create_bucket(Bucket=MODELS)
        levels = measure_contender("ours", ROOT, uploads, (CLIENTS,), tmp_path, s3, True)

    assert [level.fmt for level in levels] == list(FORMATS)
    for level in levels:
        assert level.oom_kills == 0 and level.peak_mb is not None, level
        assert level.peak_mb <= RSS_TARGET_MB, level
        assert set(level.statuses) <= {"201", "503"}, level
        assert level.statuses["201"] > 0 and level.retry_after_missing == 0, level
        assert sum(level.statuses.values()) == CLIENTS
    assert not list(Path("/sys/fs/cgroup/memory").glob("bench-app-memory-*")), "cgroup left"
    record_figure(
        request.config,
        "load",
        "app memory, 50 concurrent maximum uploads in 512 MB: "
        + "; ".join(
            f"{lv.fmt} peak {lv.peak_mb:.0f} MiB ({lv.statuses['201']}×201, "
            f"{lv.statuses['503']}×503)"
            for lv in levels
        ),
    )

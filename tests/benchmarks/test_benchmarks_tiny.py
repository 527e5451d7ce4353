"""The benchmarks never rot: the tiny run CI does must finish and print its ratios."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.contenders import ours_available

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_tiny_run_exits_zero_and_prints_ratios_to_the_floor(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--tiny", "--no-record", "--work-dir", str(tmp_path)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )

    assert done.returncode == 0, done.stderr[-2000:]
    assert re.search(r"upload as is \(aws s3 cp\): floor .* 1\.00×", done.stdout)
    assert re.search(r"upload as is, SHA-256 checksum .* \d\.\d\d×", done.stdout)
    assert re.search(r"one streaming GET \+ integrity_check: floor .* 1\.00×", done.stdout)
    ours_rows = [line for line in done.stdout.splitlines() if re.match(r"\S+\s+ours\s", line)]
    expected = sum(ours_available(task) for task in ("backup", "restore"))
    assert len(ours_rows) == expected, done.stdout
    assert all(re.search(r"\d+\.\d\d×", row) for row in ours_rows)
    if ours_available("backup"):
        assert "during our backup" in done.stdout
        assert re.search(r"ours against the upload with the same S3 checksum .*\d×", done.stdout)


@pytest.mark.slow
def test_tiny_scoring_run_prints_every_table_and_target(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--tiny", "--only", "scoring", "--no-record",
         "--work-dir", str(tmp_path)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip

    assert done.returncode == 0, done.stderr[-2000:]
    titles = (
        "False flags of the packaged model",
        "Detection per anomaly kind",
        "Leave one style family out",
        "One-class AUROC",
        "Scoring a 4096×4096 JPEG",
    )
    for title in titles:
        assert title in done.stdout, done.stdout
    assert re.search(r"mean digits AUROC ≥ 0\.99: \d\.\d{4}", done.stdout)
    assert re.search(r"p95 < 0\.5 s per 4096² JPEG: \d\.\d{3} s", done.stdout)

"""The benchmarks never rot: the tiny run CI does must finish and print its ratios."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import cgroup_limits
from benchmarks.contenders import ours_available

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_tiny_run_exits_zero_and_prints_ratios_to_the_floor(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--tiny", "--no-record", "--work-dir", str(tmp_path)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )

    assert done.returncode == 0, done.stderr[-2000:]
    assert re.search(r"upload as is \(aws s3 cp\): floor .* 1\.00×", done.stdout)
    assert re.search(r"upload as is, SHA-256 checksum .* \d\.\d\d×", done.stdout)
    assert re.search(r"one streaming GET \+ integrity_check: floor .* 1\.00×", done.stdout)
    sections = dict(re.findall(r"^== (\S+) ==\n(.*?)(?=^== |\Z)", done.stdout, re.M | re.S))
    backup_restore, backup_cost = sections["backup-restore"], sections["backup-cost"]
    ours_rows = [line for line in backup_restore.splitlines() if re.match(r"\S+\s+ours\s", line)]
    expected = sum(ours_available(task) for task in ("backup", "restore"))
    assert len(ours_rows) == expected, done.stdout
    assert all(re.search(r"\d+\.\d\d×", row) for row in ours_rows)
    assert re.search(r"naive: sqlite3 \.backup \+ aws s3 cp .* 1\.00×\s+1\.00×", backup_cost)
    assert re.search(r"ours .* \d\.\d\d×\s+\d\.\d\d×", backup_cost)
    if cgroup_limits.unavailable_reason() is None:
        assert "Backup at 0.25 CPU and 512 MB" in backup_cost
        assert re.search(r"during ours .* done in", backup_cost)
    else:
        assert "limits not measured:" in backup_cost
    assert "CRC32 (zlib)" in backup_cost
    if ours_available("backup"):
        assert "during our backup" in done.stdout
        assert re.search(r"ours against the upload with the same S3 checksum .*\d×", done.stdout)
    # The app's memory under concurrent uploads (the production command; in a 512 MB
    # cgroup where the machine allows one).
    assert "== app-memory ==" in done.stdout
    assert re.search(r"PNG\s+\|?\s*4\s+\|?\s*\d+", done.stdout), done.stdout
    assert "[met] no OOM kill, no worker restart" in done.stdout
    assert "[met] every upload answered 201, or 503 with Retry-After" in done.stdout

    # Scoring on real-looking drawings: false flags, detection, AUROC, latency.
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

    # Capacity: the ceiling at 0.25 vCPU, database growth, latency at the ceiling.
    capacity = sections["capacity"]
    ceiling = re.search(r"^8\s+[\d.]+\s+([\d.]+)\s+(\d+)\s", capacity, re.M)
    assert ceiling, capacity
    assert float(ceiling.group(1)) > 0 and int(ceiling.group(2)) > 0
    growth = re.search(r"^500\s+[\d,]+\s+(\d+)\s", capacity, re.M)
    assert growth and int(growth.group(1)) > 100, capacity
    assert "[met] every upload of the ceiling run answered 201" in capacity
    if cgroup_limits.unavailable_reason() is None:
        assert re.search(r"^100%\s+\d+\s+\d+\s+0\s+\d+\s+\d+", capacity, re.M), capacity
    else:
        assert "latency at 50/80/100 % of the ceiling not measured" in capacity

"""Commit latency of a live writer while a backup runs, against the same writer idle."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from benchmarks.harness import BenchmarkError, percentile

_SETTLE_S = 0.3


@dataclass(frozen=True)
class WriterLatency:
    phase: str
    latencies_ms: list[float]
    failures: list[str]

    def cells(self) -> list[str]:
        if not self.latencies_ms:
            return [self.phase, "0", "–", "–", "–", str(len(self.failures))]
        return [
            self.phase,
            str(len(self.latencies_ms)),
            f"{percentile(self.latencies_ms, 0.50):.1f}",
            f"{percentile(self.latencies_ms, 0.99):.1f}",
            f"{max(self.latencies_ms):.1f}",
            str(len(self.failures)),
        ]


def measure_writer_latency(
    database: Path, work: Path, idle_s: float, during: Callable[[], None]
) -> list[WriterLatency]:
    """The writer alone for `idle_s`, then the writer while `during()` runs."""
    work.mkdir(parents=True, exist_ok=True)
    idle = with_writer(database, work / "idle.json", "idle (no backup)", lambda: time.sleep(idle_s))
    busy = with_writer(database, work / "during.json", "during our backup", during)
    return [idle, busy]


def with_writer(database: Path, out: Path, phase: str, action: Callable[[], None]) -> WriterLatency:
    """The writer's commit latencies while `action()` runs (and a moment either side)."""
    # Earlier contenders leave gigabytes of dirty pages; their writeback would slow the
    # writer's fsyncs in whichever phase came first.
    os.sync()
    command = [sys.executable, "-m", "benchmarks.commit_writer", str(database), str(out)]
    writer = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_ready(writer)
        time.sleep(_SETTLE_S)
        action()
        time.sleep(_SETTLE_S)
    finally:
        writer.send_signal(signal.SIGTERM)
        _, errors = writer.communicate(timeout=60)
    if writer.returncode != 0:
        raise BenchmarkError(f"live writer exited {writer.returncode}: {errors.strip()[-300:]}")
    result = json.loads(out.read_text())
    return WriterLatency(phase, result["latencies_ms"], result["failures"])


def _wait_ready(writer: subprocess.Popen[str]) -> None:
    assert writer.stdout is not None
    line = writer.stdout.readline()
    if line.strip() != "ready":
        raise BenchmarkError(f"live writer did not start: {line.strip() or 'no output'}")

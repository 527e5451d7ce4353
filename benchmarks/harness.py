"""What every benchmark module shares: options, result shapes, measured process runs.

A benchmark is a module `benchmarks/bench_<name>.py` exposing `NAME: str`,
`DESCRIPTION: str` and `run(options: BenchOptions) -> BenchReport`; `python -m benchmarks`
finds it by its file name. See benchmarks/README.md.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path


class BenchmarkError(Exception):
    """A benchmark could not be run as set up; the message says which step and why."""


@dataclass(frozen=True)
class BenchOptions:
    sizes: list[int]
    repeat: int
    tiny: bool
    work_dir: Path


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)


@dataclass(frozen=True)
class Check:
    """A target from the issue and whether the measurement meets it."""

    target: str
    met: bool
    measured: str


@dataclass
class BenchReport:
    name: str
    tables: list[Table] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ProcessRun:
    """One contender run in its own child process (CPU: user + system of its tree)."""

    wall_s: float
    peak_rss_bytes: int
    output: str
    cpu_s: float = 0.0


@dataclass(frozen=True)
class Summary:
    """The runs of one contender: median wall time and CPU, spread, largest peak RSS."""

    name: str
    walls: list[float]
    peak_rss_bytes: int
    cpus: list[float] = field(default_factory=list)

    @property
    def median_s(self) -> float:
        return statistics.median(self.walls)

    @property
    def median_cpu_s(self) -> float:
        return statistics.median(self.cpus) if self.cpus else 0.0

    @classmethod
    def of(cls, name: str, runs: Sequence[ProcessRun]) -> Summary:
        return cls(
            name,
            [run.wall_s for run in runs],
            max(run.peak_rss_bytes for run in runs),
            [run.cpu_s for run in runs],
        )


MEASURE_SCRIPT = Path(__file__).resolve().with_name("measure.py")


def run_measured(
    command: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    log_path: Path,
    cgroups: Sequence[Path] = (),
) -> ProcessRun:
    """Run `command` in a fresh child; its wall time, CPU seconds and the peak RSS of its
    process tree, also printed to stderr as progress.

    The command runs under `measure.py`, a launcher small enough not to inflate the peak
    RSS its child inherits; with `cgroups`, the command (not the launcher) runs in those
    cgroup v1 directories. Output goes to `log_path`; a non-zero exit raises with its tail.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    figures_path = log_path.with_suffix(".measure.json")
    figures_path.unlink(missing_ok=True)
    joins = [arg for directory in cgroups for arg in ("--cgroup", str(directory))]
    launcher = [sys.executable, "-I", str(MEASURE_SCRIPT), *joins, str(figures_path), *command]
    # Untimed: the previous contender's dirty pages would otherwise be written back during
    # this one's run, and charged to whichever contender fsyncs first.
    os.sync()
    with log_path.open("wb") as log:
        returncode = subprocess.call(
            launcher, env=dict(env) if env else None, cwd=cwd, stdout=log, stderr=log
        )
    output = log_path.read_text(errors="replace")
    if returncode != 0 or not figures_path.exists():
        tail = " | ".join(output.strip().splitlines()[-3:])
        raise BenchmarkError(f"{Path(command[0]).name} … exited {returncode}: {tail}")
    figures = json.loads(figures_path.read_text())
    # Progress: a full run takes many minutes, its tables come at the end.
    where = f"{log_path.parent.parent.name}/{log_path.stem}"
    print(
        f"  {where}: {figures['wall_s']:.2f} s, {figures['cpu_s']:.2f} CPU s",
        file=sys.stderr,
        flush=True,
    )
    return ProcessRun(
        wall_s=figures["wall_s"],
        peak_rss_bytes=figures["peak_rss_kib"] * 1024,
        output=output,
        cpu_s=figures["cpu_s"],
    )


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (no interpolation), `fraction` in (0, 1]."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(fraction * len(ordered))))
    return ordered[rank - 1]


def mebibytes(size_bytes: int) -> str:
    return f"{size_bytes / 1024 / 1024:.0f}"


def ratio(value: float, reference: float | None) -> str:
    return "–" if not reference else f"{value / reference:.2f}×"

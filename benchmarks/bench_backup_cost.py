"""Our backup against the naive pipeline: wall, CPU and memory, free and at 0.25 vCPU / 512 MB.

Per size, in one run against one moto server (issue 15): our `backup` task (with the tasks
image's packages, benchmarks/tasks_image_env.py), the naive
pipeline (`sqlite3 .backup` + `aws s3 cp`, the CLI's default CRC32 checksum) and the plain
upload of the file, taking turns in an order rotated every repetition; then ours and the
naive pipeline again, each run in its own cgroup v1 with production's limits (only the
contender's process tree in it, never moto); then, in the same limits, a live writer (one
insert every 10 ms) during one backup of each; and the CPU cost of each step a backup could
take over the database's bytes (benchmarks/backup_costs.py). Without writable cgroups (CI
as a user) the limited part is skipped with a note.
"""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from benchmarks import cgroup_limits
from benchmarks import contenders as cmd
from benchmarks.app_database import app_database, format_size
from benchmarks.harness import (
    BenchmarkError,
    BenchOptions,
    BenchReport,
    Check,
    ProcessRun,
    Summary,
    Table,
    mebibytes,
    ratio,
    run_measured,
)
from benchmarks.live_writer import with_writer
from benchmarks.local_s3 import LocalS3
from benchmarks.tasks_image_env import tasks_image_python

NAME = "backup-cost"
DESCRIPTION = "backup vs naive .backup + aws s3 cp: wall, CPU, RSS, also at 0.25 CPU/512 MB"

OURS = "ours"
NAIVE = "naive: sqlite3 .backup + aws s3 cp"
FLOOR = "upload as is (aws s3 cp)"
CPU_FACTOR = 1.2
LIMITS = (
    f"cgroup v1: cpu.cfs_quota_us={cgroup_limits.CPU_QUOTA_US} of "
    f"{cgroup_limits.CPU_PERIOD_US}, "
    f"memory.limit_in_bytes={cgroup_limits.MEMORY_LIMIT_BYTES >> 20}M"
)


@dataclass(frozen=True)
class LimitedRun:
    run: ProcessRun
    throttled_s: float
    cgroup_peak_bytes: int
    oom_kills: int


Run = TypeVar("Run", ProcessRun, LimitedRun)


def run(options: BenchOptions) -> BenchReport:
    report = BenchReport(NAME)
    free = Table(
        "Backup, no limits (median of runs)",
        ["size", "contender", "wall s", "min–max s", "CPU s", "peak RSS MiB", "wall ×", "CPU ×"],
    )
    limited = Table(
        f"Backup at 0.25 CPU and 512 MB ({LIMITS}; median of runs)",
        [
            "size",
            "contender",
            "wall s",
            "min–max s",
            "CPU s",
            "throttled s",
            "peak RSS MiB",
            "cgroup peak MiB",
            "wall ×",
            "CPU ×",
        ],
    )
    writer = Table(
        "Writers' wait during one backup at 0.25 CPU and 512 MB (one insert every 10 ms)",
        ["size", "phase", "commits", "p50 ms", "p99 ms", "max ms", "failed", "backup"],
    )
    costs = Table(
        "Where a backup's CPU can go: each step alone over the database (CPU s per GB)",
        ["size", "step", "CPU s", "CPU s/GB"],
    )
    report.tables += [free, limited, writer, costs]
    report.notes.append("wall × and CPU × are ours (or the floor) against the naive pipeline")
    unavailable = cgroup_limits.unavailable_reason()
    if unavailable:
        report.notes.append(f"limits not measured: {unavailable}")
    for size in options.sizes:
        _run_size(size, options, report, unavailable is None, (free, limited, writer, costs))
    return report


def _run_size(
    size: int,
    options: BenchOptions,
    report: BenchReport,
    with_limits: bool,
    tables: tuple[Table, Table, Table, Table],
) -> None:
    free, limited, writer, costs = tables
    label = format_size(size)
    database = app_database(size, options.work_dir)
    work = options.work_dir / f"cost-{label}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    with LocalS3(work / "moto.log") as s3:
        bench = _SizeRun(s3, database, work, tasks_image_python(options.work_dir))
        bench.warm_up()
        steps = {OURS: bench.ours, NAIVE: bench.naive, FLOOR: bench.floor}
        free_runs = _take_turns(steps, options.repeat)
        free.rows += _free_rows(label, free_runs)
        report.checks += _checks(label, "no limits", free_runs)
        if with_limits:
            limited_steps = {
                OURS: lambda n: bench.limited(OURS, n),
                NAIVE: lambda n: bench.limited(NAIVE, n),
            }
            limited_runs = _take_turns(limited_steps, options.repeat)
            limited.rows += _limited_rows(label, limited_runs)
            report.checks += _checks(label, "0.25 CPU, 512 MB", limited_runs)
            writer.rows += bench.writer_rows(label)
    shutil.rmtree(work / "scratch", ignore_errors=True)
    note = f"{label}: database {database.stat().st_size:,} bytes"
    if s3.cpu_s is not None:
        note += f"; moto_server burned {s3.cpu_s:.1f} CPU s during the run (not counted)"
    report.notes.append(note)
    costs.rows += _cost_rows(label, database, work)


def _take_turns(steps: dict[str, Callable[[int], Run]], repeat: int) -> dict[str, list[Run]]:
    """Every contender once per repetition, the order rotated by one each time."""
    runs: dict[str, list[Run]] = {name: [] for name in steps}
    names = list(steps)
    for attempt in range(repeat):
        shift = attempt % len(names)
        for name in names[shift:] + names[:shift]:
            runs[name].append(steps[name](attempt))
    return runs


class _SizeRun:
    """The contenders of one size, their files and their objects in one moto server."""

    def __init__(self, s3: LocalS3, database: Path, work: Path, python: str) -> None:
        self.s3 = s3
        self.python = python  # ours runs with the tasks image's packages
        self.database = database
        self.work = work
        self.scratch = work / "scratch"
        self.scratch.mkdir(parents=True, exist_ok=True)

    def env(self, database: Path | None = None, **extra: str) -> dict[str, str]:
        env = self.s3.env()
        env.update(
            DATABASE_PATH=str(database or self.database),
            S3_BUCKET_BACKUPS=self.s3.bucket,
            OPS_STATE_PATH=str(self.work / "ops-state.db"),
            SCRATCH_DIR=str(self.scratch),
            ENABLE_METRICS="false",
            ENVIRONMENT="local",
            LOG_FORMAT="json",
        )
        env.update(extra)
        return env

    def command(self, contender: str, attempt: int, database: Path) -> tuple[list[str], str]:
        """The argv of `contender` and the key prefix its object lands under."""
        prefix = f"{contender.split(':')[0].split(' ')[0]}/{attempt}/"
        if contender == OURS:
            return cmd.ours_backup(self.python), prefix
        url = f"s3://{self.s3.bucket}/{prefix}backup.db"
        if contender == NAIVE:
            copy = self.scratch / "naive-copy.db"
            return cmd.scripted_backup(self.s3.endpoint, database, copy, url), prefix
        return cmd.upload_as_is(self.s3.endpoint, database, url), prefix

    def measure(
        self, contender: str, attempt: int, cgroups: Sequence[Path] = (), tag: str = ""
    ) -> ProcessRun:
        command, prefix = self.command(contender, attempt, self.database)
        name = contender.split(":")[0].split(" ")[0]
        log = self.work / "logs" / f"{name}{tag}-{attempt}.log"
        done = run_measured(
            command, env=self.env(BACKUP_PREFIX=prefix), log_path=log, cgroups=cgroups
        )
        self._expect_one_object(prefix)
        return done

    def warm_up(self) -> None:
        """One untimed upload: the first large request to a fresh moto server is slower."""
        self.measure(FLOOR, 0, tag="-warm-up")

    def ours(self, attempt: int) -> ProcessRun:
        return self.measure(OURS, attempt)

    def naive(self, attempt: int) -> ProcessRun:
        return self.measure(NAIVE, attempt)

    def floor(self, attempt: int) -> ProcessRun:
        return self.measure(FLOOR, attempt)

    def limited(self, contender: str, attempt: int) -> LimitedRun:
        with cgroup_limits.limited_cgroup() as cgroup:
            done = self.measure(contender, attempt, cgroup.directories, tag="-limited")
            figures = cgroup.figures()
        return LimitedRun(done, figures.throttled_s, figures.memory_peak_bytes, figures.oom_kills)

    def writer_rows(self, label: str) -> list[list[str]]:
        """The live writer idle, then during one limited backup of each contender, on a copy
        of the database (the writer adds rows to it)."""
        live = self.work / "live.db"
        shutil.copyfile(self.database, live)
        rows: list[list[str]] = []
        try:
            idle = with_writer(live, self.work / "writer-idle.json", "idle", lambda: None)
            rows.append([label, *idle.cells(), "–"])
            for contender in (OURS, NAIVE):
                outcome: list[str] = []
                latency = with_writer(
                    live,
                    self.work / f"writer-{contender.split(':')[0]}.json",
                    f"during {contender}",
                    functools.partial(self._backup_under_writer, contender, live, outcome),
                )
                rows.append([label, *latency.cells(), outcome[0] if outcome else "–"])
        finally:
            live.unlink(missing_ok=True)
        return rows

    def _backup_under_writer(self, contender: str, live: Path, outcome: list[str]) -> None:
        outcome.append(self._limited_backup_of(contender, live))

    def _limited_backup_of(self, contender: str, live: Path) -> str:
        command, prefix = self.command(contender, 99, live)
        log = self.work / "logs" / f"{contender.split(':')[0].split(' ')[0]}-live.log"
        with cgroup_limits.limited_cgroup() as cgroup:
            try:
                done = run_measured(
                    command,
                    env=self.env(live, BACKUP_PREFIX=prefix),
                    log_path=log,
                    cgroups=cgroup.directories,
                )
            except BenchmarkError as exc:
                return f"failed: {str(exc).split(': ', 1)[-1][:80]}"
        self.s3.delete_prefix(prefix)
        return f"done in {done.wall_s:.1f} s"

    def _expect_one_object(self, prefix: str) -> None:
        listing = self.s3.client().list_objects_v2(Bucket=self.s3.bucket, Prefix=prefix)
        keys = [item["Key"] for item in listing.get("Contents", [])]
        if len(keys) != 1:
            raise BenchmarkError(f"backup under {prefix}: expected one object, found {keys}")
        self.s3.delete_prefix(prefix)  # moto holds every object in memory


def _runs(done: Sequence[ProcessRun | LimitedRun]) -> list[ProcessRun]:
    return [item.run if isinstance(item, LimitedRun) else item for item in done]


def _ratios(summary: Summary, naive: Summary) -> list[str]:
    return [
        ratio(summary.median_s, naive.median_s),
        ratio(summary.median_cpu_s, naive.median_cpu_s),
    ]


def _free_rows(label: str, runs: dict[str, list[ProcessRun]]) -> list[list[str]]:
    summaries = {name: Summary.of(name, done) for name, done in runs.items()}
    naive = summaries[NAIVE]
    return [
        [
            label,
            name,
            f"{s.median_s:.2f}",
            f"{min(s.walls):.2f}–{max(s.walls):.2f}",
            f"{s.median_cpu_s:.2f}",
            mebibytes(s.peak_rss_bytes),
            *_ratios(s, naive),
        ]
        for name, s in summaries.items()
    ]


def _limited_rows(label: str, runs: dict[str, list[LimitedRun]]) -> list[list[str]]:
    summaries = {name: Summary.of(name, _runs(done)) for name, done in runs.items()}
    naive = summaries[NAIVE]
    rows = []
    for name, done in runs.items():
        s = summaries[name]
        throttled = sorted(run.throttled_s for run in done)[len(done) // 2]
        cgroup_peak = max(run.cgroup_peak_bytes for run in done)
        ooms = sum(run.oom_kills for run in done)
        rows.append(
            [
                label,
                name + (f" ({ooms} OOM kills)" if ooms else ""),
                f"{s.median_s:.2f}",
                f"{min(s.walls):.2f}–{max(s.walls):.2f}",
                f"{s.median_cpu_s:.2f}",
                f"{throttled:.1f}",
                mebibytes(s.peak_rss_bytes),
                mebibytes(cgroup_peak),
                *_ratios(s, naive),
            ]
        )
    return rows


def _checks(
    label: str, condition: str, runs: dict[str, list[ProcessRun]] | dict[str, list[LimitedRun]]
) -> list[Check]:
    ours = Summary.of(OURS, _runs(runs[OURS]))
    naive = Summary.of(NAIVE, _runs(runs[NAIVE]))
    return [
        Check(
            f"{label} {condition}: ours no slower than the naive pipeline",
            ours.median_s <= naive.median_s,
            f"{ours.median_s:.2f} s vs {naive.median_s:.2f} s "
            f"({ratio(ours.median_s, naive.median_s)})",
        ),
        Check(
            f"{label} {condition}: ours ≤ {CPU_FACTOR}× the naive pipeline's CPU seconds",
            ours.median_cpu_s <= CPU_FACTOR * naive.median_cpu_s,
            f"{ours.median_cpu_s:.2f} CPU s vs {naive.median_cpu_s:.2f} "
            f"({ratio(ours.median_cpu_s, naive.median_cpu_s)})",
        ),
    ]


def _cost_rows(label: str, database: Path, work: Path) -> list[list[str]]:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.backup_costs", str(database)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise BenchmarkError(f"backup_costs {database.name}: {done.stderr.strip()[-300:]}")
    (work / "costs.json").write_text(done.stdout)
    figures = json.loads(done.stdout)
    gigabytes = figures["bytes"] / 1e9
    return [
        [label, step, f"{cpu_s:.2f}", f"{cpu_s / gigabytes:.2f}"]
        for step, cpu_s in figures["cpu_s"].items()
    ]

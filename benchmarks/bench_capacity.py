"""How far one app task goes (issue 17): CPU seconds per analysis, the analyses per minute that
makes at 0.25 vCPU, p95 latency at 50, 80 and 100 % of that rate, database bytes per analysis.

1. Ceiling: `python -m app serve` (one worker, as production's one gunicorn worker) against
   moto's server (its own process, not counted), N uploads of 1024×1024 PNGs one after another;
   the worker's CPU seconds (utime + stime from /proc) over them, per analysis. At 0.25 vCPU a
   task has 15 CPU seconds a minute, so the ceiling is 15 / (CPU seconds per analysis).
2. Database growth: the SQLite file's size after the N analyses against before them.
3. Latency at a share of the ceiling: a fresh worker in a cgroup v1 with production's limits
   (benchmarks/cgroup_limits.py: 25 ms of CPU per 100 ms, 512 MB), uploads sent open-loop at
   50 %, 80 % and 100 % of the ceiling for a fixed time each; skipped, saying why, where no
   cgroup can be made.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks import cgroup_limits
from benchmarks.app_server import app_server
from benchmarks.bench_app import drawing_png
from benchmarks.harness import BenchOptions, BenchReport, Check, Table, percentile

NAME = "capacity"
DESCRIPTION = "one app task: CPU s per analysis, analyses/min at 0.25 vCPU, p95 at 50/80/100 %"
TASK_VCPU = 0.25
SHARES = (0.5, 0.8, 1.0)
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of the process (all its threads), from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def images() -> list[tuple[bytes, int]]:
    return [
        (drawing_png(seed, age, grain=seed % 2 == 0), age)
        for seed, age in ((1, 4), (2, 7), (3, 9), (4, 12), (5, 15), (6, 17))
    ]


async def _upload(session: object, data: bytes, age: int) -> tuple[float, str]:
    import httpx

    started = time.perf_counter()
    try:
        response = await session.post(  # type: ignore[attr-defined]
            "/api/v1/drawings", files={"file": ("d.png", data, "image/png")}, data={"age": str(age)}
        )
        outcome = str(response.status_code)
    except httpx.HTTPError as exc:
        outcome = type(exc).__name__
    return time.perf_counter() - started, outcome


async def _sequential(url: str, drawings: list[tuple[bytes, int]], count: int) -> list[str]:
    import httpx

    async with httpx.AsyncClient(base_url=url, timeout=120) as session:
        return [(await _upload(session, *drawings[i % len(drawings)]))[1] for i in range(count)]


async def _open_loop(
    url: str, drawings: list[tuple[bytes, int]], per_second: float, seconds: float
) -> tuple[list[float], dict[str, int]]:
    """Uploads started at a fixed rate whatever the answers (as independent users send them)."""
    import httpx

    count = max(1, round(per_second * seconds))
    async with httpx.AsyncClient(
        base_url=url, timeout=120, limits=httpx.Limits(max_connections=200)
    ) as session:
        began = time.monotonic()
        tasks = []
        for i in range(count):
            await asyncio.sleep(max(0.0, began + i / per_second - time.monotonic()))
            tasks.append(asyncio.create_task(_upload(session, *drawings[i % len(drawings)])))
        answers = await asyncio.gather(*tasks)
    statuses: dict[str, int] = {}
    for _, outcome in answers:
        statuses[outcome] = statuses.get(outcome, 0) + 1
    return [latency for latency, outcome in answers if outcome == "201"], statuses


@dataclass(frozen=True)
class Ceiling:
    uploads: int
    cpu_s: float
    wall_s: float
    errors: int
    upload_bytes: int  # the file's growth over the uploads (page-granular)
    copies: int  # further analyses written with the app's own write, for the growth
    copies_bytes: int

    @property
    def cpu_s_per_analysis(self) -> float:
        return self.cpu_s / self.uploads

    @property
    def per_minute(self) -> float:
        return TASK_VCPU * 60 / self.cpu_s_per_analysis

    @property
    def bytes_per_analysis(self) -> float:
        return self.copies_bytes / self.copies


def measure_ceiling(
    work: Path, drawings: list[tuple[bytes, int]], count: int, copies: int
) -> Ceiling:
    with app_server(work) as server:
        asyncio.run(_sequential(server.url, drawings, 3))  # warm-up: model, pools, pages
        cpu_before, size_before = cpu_seconds(server.pid), server.database.stat().st_size
        began = time.monotonic()
        outcomes = asyncio.run(_sequential(server.url, drawings, count))
        wall = time.monotonic() - began
        cpu = cpu_seconds(server.pid) - cpu_before
        upload_bytes = server.database.stat().st_size - size_before
    copies_bytes, _ = database_growth(server.database, copies)
    errors = sum(outcome != "201" for outcome in outcomes)
    return Ceiling(count, cpu, wall, errors, upload_bytes, copies, copies_bytes)


def measure_shares(
    work: Path,
    drawings: list[tuple[bytes, int]],
    per_minute: float,
    seconds: float,
    shares: tuple[float, ...],
) -> list[list[str]]:
    """One worker in the limited cgroup, each share in turn (the slowest first)."""
    rows = []
    with cgroup_limits.limited_cgroup() as cgroup, app_server(work, cgroup) as server:
        asyncio.run(_sequential(server.url, drawings, 2))
        for share in shares:
            rate = per_minute * share / 60
            throttled_before = cgroup.figures().throttled_s
            latencies, statuses = asyncio.run(_open_loop(server.url, drawings, rate, seconds))
            throttled = cgroup.figures().throttled_s - throttled_before
            sent = sum(statuses.values())
            rows.append(
                [
                    f"{share:.0%}",
                    f"{rate * 60:.0f}",
                    str(sent),
                    str(sent - statuses.get("201", 0)),
                    f"{percentile(latencies, 0.5) * 1000:.0f}" if latencies else "–",
                    f"{percentile(latencies, 0.95) * 1000:.0f}" if latencies else "–",
                    f"{throttled:.1f}",
                ]
            )
    return rows


def database_growth(database: Path, copies: int) -> tuple[int, int]:
    """The app's own write (app.records.record_analysis) of `copies` analyses shaped like the
    ones the run stored, into that SQLite file: (bytes, analyses) added."""
    from sqlalchemy import select

    from app.database import make_engine
    from app.records import NewAnalysis, NewDrawing, record_analysis
    from app.tables import analyses, drawings

    engine = make_engine(database, 30_000)
    try:
        with engine.connect() as conn:
            stored = (
                conn.execute(
                    select(drawings, analyses).join(
                        analyses, analyses.c.drawing_id == drawings.c.id
                    )
                )
                .mappings()
                .all()
            )
        before = database.stat().st_size
        for i in range(copies):
            row = stored[i % len(stored)]
            drawing = NewDrawing(
                **{f: row[f] for f in NewDrawing.__dataclass_fields__ if f != "storage_key"},
                storage_key=f"{row['storage_key']}-{i}",
            )
            analysis = NewAnalysis(**{f: row[f] for f in NewAnalysis.__dataclass_fields__})
            record_analysis(engine, drawing, analysis)
        return database.stat().st_size - before, copies
    finally:
        engine.dispose()


def run(options: BenchOptions) -> BenchReport:
    count, copies, seconds = (8, 500, 4.0) if options.tiny else (120, 20_000, 60.0)
    shares = SHARES[-1:] if options.tiny else SHARES
    work = options.work_dir / "capacity"
    drawings = images()
    ceiling = measure_ceiling(work, drawings, count, copies)

    report = BenchReport(NAME)
    report.tables.append(
        Table(
            f"One worker, {count} uploads of 1024×1024 PNGs one after another (moto not counted)",
            [
                "analyses",
                "worker CPU s",
                "CPU s/analysis",
                "analyses/min at 0.25 vCPU",
                "wall s",
                "DB bytes over the uploads",
            ],
            [
                [
                    str(ceiling.uploads),
                    f"{ceiling.cpu_s:.2f}",
                    f"{ceiling.cpu_s_per_analysis:.3f}",
                    f"{ceiling.per_minute:.0f}",
                    f"{ceiling.wall_s:.1f}",
                    f"{ceiling.upload_bytes:,}",
                ]
            ],
        )
    )
    report.tables.append(
        Table(
            f"Database growth: {copies:,} more analyses shaped like the uploads', written with "
            "app.records.record_analysis into the same SQLite file",
            ["analyses", "bytes added", "bytes/analysis"],
            [[f"{copies:,}", f"{ceiling.copies_bytes:,}", f"{ceiling.bytes_per_analysis:.0f}"]],
        )
    )
    report.checks.append(
        Check(
            "every upload of the ceiling run answered 201", ceiling.errors == 0, str(ceiling.errors)
        )
    )
    unavailable = cgroup_limits.unavailable_reason()
    if unavailable is None:
        rows = measure_shares(work, drawings, ceiling.per_minute, seconds, shares)
        report.tables.append(
            Table(
                f"Open-loop uploads for {seconds:.0f} s each to a worker at 0.25 CPU and 512 MB "
                "(cgroup v1), at a share of the ceiling above",
                ["share", "per min", "sent", "not 201", "p50 ms", "p95 ms", "throttled s"],
                rows,
            )
        )
    else:
        report.notes.append(f"latency at 50/80/100 % of the ceiling not measured: {unavailable}")
    report.notes.append(
        f"analyses/min at 0.25 vCPU = {TASK_VCPU} × 60 CPU s / (worker CPU s per analysis), this "
        "machine's core counted as one vCPU; DB bytes/analysis = growth of the SQLite file over "
        "the analyses written (each a drawings row and an analyses row with their indexes)."
    )
    return report

"""The app's memory under concurrent maximum-size uploads (issue 12, item 4).

For each accepted format, the largest upload the app accepts (a 10 MB file; 4096×4096 pixels
for PNG and JPEG, the largest 8-bit palette BMP under 10 MB), sent by 1, 4, 16 and 50
concurrent clients at once to the app started as the image starts it (Dockerfile.prod's CMD
and ENV: gunicorn, one uvicorn worker) inside a cgroup v1 memory controller limited to
512 MB, as on Fargate. Measured: the worker's peak RSS (VmHWM, reset between levels through
/proc/PID/clear_refs), the cgroup's OOM kills, and what the clients got (201, or 503 with
Retry-After). Side by side: ours and the code before the fix (a `git worktree` of
BASELINE_COMMIT), each with its own Dockerfile.prod. Target: ≤ 450 MB at every level, no
OOM kill. Without a writable memory controller the app runs unconfined (noted).
"""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from benchmarks.harness import BenchmarkError, BenchOptions, BenchReport, Check, Table
from benchmarks.local_s3 import LocalS3
from benchmarks.production_app import (
    ROOT,
    MemoryCgroup,
    ProductionApp,
    memory_cgroup,
    peak_rss_bytes,
)

NAME = "app-memory"
DESCRIPTION = "app worker peak RSS under 1-50 concurrent maximum-size uploads, 512 MB cgroup"
BASELINE_COMMIT = "a52a061"  # main before issue 12
FORMATS = ("PNG", "JPEG", "BMP")
LEVELS = (1, 4, 16, 50)
TASK_MEMORY_BYTES = 512 * 1024 * 1024
RSS_TARGET_MB = 450
MAX_UPLOAD_BYTES = 10 * 1024 * 1024
DRAWINGS = "drawing-analysis-drawings-bench"
MODELS = "drawing-analysis-models-bench"
CONTENT_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "BMP": "image/bmp"}


def largest_upload(fmt: str, side: int = 4096, limit: int = MAX_UPLOAD_BYTES) -> bytes:
    """The largest image of `fmt` the app accepts: `side`² pixels (BMP: the largest palette
    square under `limit`), paper white with a band of noise that fills the file to ~95 % of
    `limit` (noise does not compress)."""
    from PIL import Image

    rng = np.random.default_rng(12)
    if fmt == "BMP":
        side = min(side, int(((limit * 0.95) - 1078) ** 0.5) // 4 * 4)
        pixels = rng.integers(0, 256, size=(side, side), dtype=np.uint8)
        image = Image.fromarray(pixels, "L").convert("P")
        return _encode(image, fmt)
    pixels = np.full((side, side, 3), 250, dtype=np.uint8)
    low, high = 0, side
    best = b""
    while low < high:  # the noise band's height that fills the file best
        rows = (low + high + 1) // 2
        pixels[:] = 250
        pixels[:rows] = rng.integers(0, 256, size=(rows, side, 3), dtype=np.uint8)
        data = _encode(Image.fromarray(pixels, "RGB"), fmt)
        if len(data) <= limit * 0.95:
            low, best = rows, data
        else:
            high = rows - 1
    return best


def _encode(image: object, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))  # type: ignore[attr-defined]
    return buffer.getvalue()


@dataclass
class Level:
    contender: str
    fmt: str
    clients: int
    peak_rss: int | None  # None: the worker died (OOM kill)
    statuses: Counter[str] = field(default_factory=Counter)
    retry_after_missing: int = 0
    oom_kills: int = 0
    seconds: float = 0.0

    @property
    def peak_mb(self) -> float | None:
        return None if self.peak_rss is None else self.peak_rss / 2**20


async def _burst(url: str, data: bytes, fmt: str, clients: int) -> tuple[Counter[str], int]:
    import httpx

    statuses: Counter[str] = Counter()
    missing = 0

    async def one(session: httpx.AsyncClient) -> None:
        nonlocal missing
        try:
            response = await session.post(
                "/api/v1/drawings",
                files={"file": (f"max.{fmt.lower()}", data, CONTENT_TYPES[fmt])},
                data={"age": "8"},
            )
        except httpx.HTTPError as exc:
            statuses[type(exc).__name__] += 1
            return
        statuses[str(response.status_code)] += 1
        if response.status_code == 503 and not response.headers.get("retry-after"):
            missing += 1

    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=300, limits=limits) as session:
        await asyncio.gather(*(one(session) for _ in range(clients)))
    return statuses, missing


def _reset_peak(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # VmHWM := current RSS


def app_env(s3: LocalS3, work: Path) -> dict[str, str]:
    return {
        **s3.env(),
        "ENVIRONMENT": "production",
        "S3_BUCKET_DRAWINGS": DRAWINGS,
        "S3_BUCKET_MODELS": MODELS,
        "S3_BUCKET_BACKUPS": "drawing-analysis-backups-bench",
        "ADMIN_PASSWORD": "benchmark-only-password",
        "DATABASE_PATH": str(work / "app.db"),
        "OPS_STATE_PATH": str(work / "ops-state.db"),
        "SCRATCH_DIR": str(work),
        "LOG_LEVEL": "WARNING",
    }


def measure_contender(
    contender: str,
    tree: Path,
    uploads: dict[str, bytes],
    levels: tuple[int, ...],
    work: Path,
    s3: LocalS3,
    confine: bool,
) -> list[Level]:
    """Each format on a freshly started app; the levels one after another on it (a new app
    when the worker died)."""
    results: list[Level] = []
    for fmt, data in uploads.items():
        app_work = work / f"{contender}-{fmt.lower()}"
        app_work.mkdir(parents=True, exist_ok=True)
        for leftover in app_work.glob("app.db*"):
            leftover.unlink()
        app: ProductionApp | None = None
        cgroup_name = f"bench-app-memory-{os.getpid()}-{contender}-{fmt.lower()}"
        with _maybe_cgroup(cgroup_name, confine) as cgroup:
            try:
                for clients in levels:
                    if app is None:
                        app = ProductionApp(
                            app_env(s3, app_work),
                            app_work / "app.log",
                            cgroup=cgroup,
                            dockerfile=tree / "Dockerfile.prod",
                        ).__enter__()
                    worker = app.worker_pid()
                    kills_before = cgroup.oom_kills if cgroup else 0
                    _reset_peak(worker)
                    started = time.monotonic()
                    statuses, missing = asyncio.run(_burst(app.url, data, fmt, clients))
                    level = Level(contender, fmt, clients, None, statuses, missing)
                    level.seconds = time.monotonic() - started
                    level.oom_kills = (cgroup.oom_kills if cgroup else 0) - kills_before
                    try:
                        alive = app.worker_pid() == worker
                        level.peak_rss = peak_rss_bytes(worker) if alive else None
                    except (BenchmarkError, FileNotFoundError, ProcessLookupError):
                        alive = False
                    if not alive or level.oom_kills:
                        level.peak_rss = None
                        app.stop()
                        app = None
                    results.append(level)
                    print(f"  {_describe(level)}", flush=True)
                    s3.delete_prefix("drawings/")
            finally:
                if app is not None:
                    app.stop()
    return results


class _maybe_cgroup:
    def __init__(self, name: str, confine: bool) -> None:
        self._context = memory_cgroup(name, TASK_MEMORY_BYTES) if confine else None

    def __enter__(self) -> MemoryCgroup | None:
        return self._context.__enter__() if self._context else None

    def __exit__(self, *exc: object) -> None:
        if self._context:
            self._context.__exit__(*exc)  # type: ignore[arg-type]


def _describe(level: Level) -> str:
    peak = "worker killed" if level.peak_mb is None else f"peak {level.peak_mb:.0f} MiB"
    codes = ", ".join(f"{code}: {n}" for code, n in sorted(level.statuses.items()))
    return f"{level.contender} {level.fmt} × {level.clients}: {peak}; {codes}"


def baseline_tree(work: Path) -> Path | None:
    """A worktree of BASELINE_COMMIT (removed by `remove_tree`), or None where history
    lacks it."""
    tree = work / "baseline-tree"
    if tree.exists():
        remove_tree(tree)
    known = subprocess.run(
        ["git", "cat-file", "-e", f"{BASELINE_COMMIT}^{{commit}}"], cwd=ROOT, check=False
    )
    if known.returncode != 0:
        return None
    subprocess.run(
        ["git", "worktree", "add", "--detach", str(tree), BASELINE_COMMIT],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    return tree


def remove_tree(tree: Path) -> None:
    subprocess.run(
        ["git", "worktree", "remove", "--force", str(tree)],
        cwd=ROOT,
        check=False,
        capture_output=True,
    )


def run(options: BenchOptions) -> BenchReport:
    work = options.work_dir / "app-memory"
    work.mkdir(parents=True, exist_ok=True)
    confine = MemoryCgroup.available()
    if options.tiny:
        uploads = {"PNG": largest_upload("PNG", side=1024, limit=1024 * 1024)}
        levels: tuple[int, ...] = (1, 4)
        contenders = [("ours", ROOT)]
    else:
        uploads = {fmt: largest_upload(fmt) for fmt in FORMATS}
        levels = LEVELS
        contenders = [("ours", ROOT)]
        baseline = baseline_tree(work)
        if baseline is not None:
            contenders.append(("before", baseline))
    results: list[Level] = []
    try:
        with LocalS3(work / "moto.log", bucket=DRAWINGS) as s3:
            s3.client().create_bucket(Bucket=MODELS)
            for contender, tree in contenders:
                results += measure_contender(contender, tree, uploads, levels, work, s3, confine)
    finally:
        for contender, tree in contenders:
            if contender == "before":
                remove_tree(tree)
    return report(results, uploads, confine, len(contenders) > 1)


def report(
    results: list[Level], uploads: dict[str, bytes], confine: bool, compared: bool
) -> BenchReport:
    out = BenchReport(NAME)
    where = "in a 512 MB cgroup v1 memory controller" if confine else "unconfined (no cgroup)"
    sizes = ", ".join(f"{fmt} {len(data) / 2**20:.1f} MiB" for fmt, data in uploads.items())
    table = Table(
        f"Worker peak RSS (MiB), production command {where}; uploads: {sizes}",
        ["format", "clients", "ours MiB", "ours answers", "before MiB", "before answers", "ratio"],
    )
    ours = [r for r in results if r.contender == "ours"]
    before = {(r.fmt, r.clients): r for r in results if r.contender == "before"}
    for level in ours:
        old = before.get((level.fmt, level.clients))
        ratio = "–"
        if old and old.peak_mb and level.peak_mb:
            ratio = f"{level.peak_mb / old.peak_mb:.2f}×"
        table.rows.append(
            [
                level.fmt,
                str(level.clients),
                _mb(level),
                _answers(level),
                _mb(old) if old else "–",
                _answers(old) if old else "–",
                ratio,
            ]
        )
    out.tables.append(table)
    worst = max((r.peak_mb or float("inf")) for r in ours)
    kills = sum(r.oom_kills for r in ours) + sum(r.peak_rss is None for r in ours)
    unanswered = sum(
        n for r in ours for code, n in r.statuses.items() if code not in ("201", "503")
    )
    missing = sum(r.retry_after_missing for r in ours)
    out.checks += [
        Check(
            f"worker peak RSS ≤ {RSS_TARGET_MB} MB at every level",
            worst <= RSS_TARGET_MB,
            f"{worst:.0f} MiB",
        ),
        Check("no OOM kill, no worker restart", kills == 0, str(kills)),
        Check(
            "every upload answered 201, or 503 with Retry-After",
            unanswered + missing == 0,
            f"{unanswered} other answers, {missing} 503 without Retry-After",
        ),
    ]
    if not compared:
        out.notes.append("No side-by-side run: tiny size, or the baseline commit is unknown.")
    if not confine:
        out.notes.append("No writable cgroup v1 memory controller: the app ran unconfined.")
    return out


def _mb(level: Level) -> str:
    return "killed (OOM)" if level.peak_mb is None else f"{level.peak_mb:.0f}"


def _answers(level: Level) -> str:
    return ", ".join(f"{code}×{n}" for code, n in sorted(level.statuses.items()))

"""publish-metrics over many analyses: wall time, peak RSS, PutMetricData calls vs the fewest.

Each row count gets a fresh app database whose analyses spread evenly over the last seven
days (one with --tiny; CloudWatch's two-week window keeps all of them) and a fresh ops state;
`python -m tasks publish-metrics --json` runs in its own process against moto's server
(its own process too). The fewest calls the limits allow are computed from the same minutes
with the publisher's exact payload sizer; peak RSS at the largest count over the smallest
shows whether memory stays flat in the number of rows.
"""

from __future__ import annotations

import json
import random
import sqlite3
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from benchmarks.app_database import (
    BATCH_ROWS,
    INSERT_ANALYSES,
    INSERT_DRAWINGS,
    migrated_database,
)
from benchmarks.harness import (
    BenchmarkError,
    BenchOptions,
    BenchReport,
    Check,
    Table,
    mebibytes,
    run_measured,
)
from benchmarks.local_s3 import LocalS3

NAME = "publish-metrics"
DESCRIPTION = "publish-metrics over up to 1 million analyses against moto's CloudWatch"

FULL_ROWS = (100_000, 1_000_000)
TINY_ROWS = (1_000, 10_000)
SPREAD = timedelta(days=7)
TINY_SPREAD = timedelta(days=1)
RSS_FLAT_RATIO = 1.25


def build_database(path: Path, rows: int, now: datetime, spread: timedelta, seed: int = 11) -> None:
    """An app database (the app's migrations) with `rows` analyses, each with its drawing,
    evenly over `spread` before `now`."""
    rng = random.Random(seed)
    step = spread / rows
    first = now - spread - timedelta(minutes=2)
    conn = sqlite3.connect(migrated_database(path))
    for start in range(1, rows + 1, BATCH_ROWS):
        drawings, analyses = [], []
        for i in range(start, min(start + BATCH_ROWS, rows + 1)):
            at = (first + step * (i - 1)).isoformat()
            milliseconds = min(5000.0, rng.lognormvariate(4.7, 0.45))
            anomaly = int(rng.random() < 0.05)
            drawings.append((i, f"{i}.png", "image/png", 40_000, "", 6, None, f"d/{i}.png", at))
            score = 0.9 if anomaly else 0.5
            analyses.append(
                (i, f"handle-{i}", i, at, "v1", "6-7", score, 0.85, anomaly, 1.0, milliseconds)
            )
        conn.executemany(INSERT_DRAWINGS, drawings)
        conn.executemany(INSERT_ANALYSES, analyses)
        conn.commit()
    conn.close()


def fewest_calls(database: Path, start: str, end: str, now: datetime) -> tuple[int, int, int]:
    """(items, payload bytes, fewest calls) for the minutes [start, end) a run published."""
    import botocore.session

    from opsd.database import connect
    from opsd.metrics import Datum, PayloadSizer, fewest_possible_calls, to_metric_data
    from opsd.metrics import split_datum as _split
    from tasks.metrics.analysis_minutes import minutes_between

    model = botocore.session.get_session().get_service_model("cloudwatch")
    sizer = PayloadSizer(model, "DrawingAnalysis")
    conn = connect(database, readonly=True)
    items = size = 0
    data = (datum for minute in minutes_between(conn, start, end) for datum in minute.data())
    gauges = [Datum("DatabaseSizeBytes", 1, timestamp=now), Datum("BackupAgeSeconds", 1.0)]
    for datum in [*data, *gauges]:
        for part in _split(datum):
            items += 1
            size += sizer(to_metric_data(part, "local"))
    conn.close()
    return items, size, fewest_possible_calls(items, size, sizer)


def _run_task(env: dict[str, str], log_path: Path) -> tuple[float, int, dict]:
    run = run_measured(
        [sys.executable, "-m", "tasks", "publish-metrics", "--json"],
        env=env,
        cwd=Path(__file__).resolve().parent.parent,
        log_path=log_path,
    )
    start = run.output.find("{\n")
    if start < 0:
        raise BenchmarkError(f"publish-metrics: no JSON report in {log_path}")
    report, _ = json.JSONDecoder().raw_decode(run.output[start:])
    return run.wall_s, run.peak_rss_bytes, report


def run(options: BenchOptions) -> BenchReport:
    row_counts = TINY_ROWS if options.tiny else FULL_ROWS
    work = options.work_dir / "publish-metrics"
    work.mkdir(parents=True, exist_ok=True)
    spread = TINY_SPREAD if options.tiny else SPREAD
    table = Table(
        f"publish-metrics, first run over {spread.days} days of analyses",
        [
            "analyses",
            "minutes",
            "wall s",
            "peak RSS MiB",
            "calls",
            "fewest calls",
            "items",
            "payload MB",
            "re-run analyses",
        ],
    )
    checks: list[Check] = []
    peaks: dict[int, int] = {}
    with LocalS3(work / "moto.log") as s3:
        now = datetime.now(UTC)
        s3.client().put_object(
            Bucket=s3.bucket, Key=f"backup-{now - timedelta(hours=2):%Y-%m-%d-%H-%M}.db", Body=b"x"
        )
        for index, rows in enumerate(row_counts):
            database = work / f"app-{rows}.db"
            state = work / f"ops-state-{rows}.db"
            state.unlink(missing_ok=True)
            build_database(database, rows, now, spread)
            env = {
                **s3.env(),
                "ENVIRONMENT": "local",
                "DATABASE_PATH": str(database),
                "OPS_STATE_PATH": str(state),
                "S3_BUCKET_BACKUPS": s3.bucket,
                "LOG_FORMAT": "json",
            }
            walls, peak, report = [], 0, {}
            for attempt in range(options.repeat):
                state.unlink(missing_ok=True)
                # A first run needs a CloudWatch without these minutes: with the state gone,
                # publish-metrics resumes after the newest minute CloudWatch holds. Each run
                # gets its own Environment (5 characters, as "local", so that item sizes and
                # the fewest calls below stay comparable).
                env["ENVIRONMENT"] = f"run{index}{attempt % 10}"
                env["S3_BUCKET_DRAWINGS"] = env["S3_BUCKET_MODELS"] = s3.bucket
                wall, rss, report = _run_task(env, work / f"run-{rows}-{attempt}.log")
                walls.append(wall)
                peak = max(peak, rss)
            _, _, rerun = _run_task(env, work / f"rerun-{rows}.log")
            items, payload, fewest = fewest_calls(
                database, report["from_minute"], report["to_minute_exclusive"], now
            )
            peaks[rows] = peak
            calls = report["put_metric_data_calls"]
            table.rows.append(
                [
                    f"{rows:,}",
                    f"{report['minutes']:,}",
                    f"{sorted(walls)[len(walls) // 2]:.2f}",
                    mebibytes(peak),
                    str(calls),
                    str(fewest),
                    f"{items:,}",
                    f"{payload / 1e6:.1f}",
                    str(rerun["analyses"]),
                ]
            )
            checks.append(
                Check(
                    f"{rows:,} analyses: calls = fewest the limits allow",
                    calls <= fewest,
                    f"{calls} calls, fewest {fewest}",
                )
            )
            checks.append(
                Check(
                    f"{rows:,} analyses: a re-run publishes nothing twice",
                    rerun["analyses"] == 0,
                    f"{rerun['analyses']} analyses re-published",
                )
            )
            database.unlink(missing_ok=True)
    small, large = peaks[row_counts[0]], peaks[row_counts[-1]]
    checks.append(
        Check(
            f"RSS flat in rows: peak at {row_counts[-1]:,} ≤ {RSS_FLAT_RATIO}× peak at "
            f"{row_counts[0]:,}",
            large <= RSS_FLAT_RATIO * small,
            f"{mebibytes(large)} MiB vs {mebibytes(small)} MiB ({large / small:.2f}×)",
        )
    )
    notes = [
        "Fewest calls = max(items / 1,000, payload / (1,000,000 bytes − request overhead)), "
        "from the same minutes and the publisher's exact CBOR sizes; ProcessingTime is one "
        "Values/Counts item per minute per 150 distinct milliseconds.",
        "The wall time includes moto's server decoding and storing every data point on the "
        "same two cores; the runner's own TaskSucceeded/TaskDurationSeconds call is not counted.",
    ]
    return BenchReport(NAME, tables=[table], checks=checks, notes=notes)

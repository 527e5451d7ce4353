"""publish-metrics: app metrics from the database and the backup age, to CloudWatch.

Each run publishes the minutes that are over since the watermark (the first minute not yet
published, in the ops state), then moves the watermark. A lease in the ops state keeps two
runs started together from publishing the same minutes. See docs/METRICS.md.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from opsd.aws import describe_aws_error
from opsd.database import DatabaseError, connect
from opsd.metrics import Datum, MetricsError
from opsd.results import Status, TaskError, TaskResult
from opsd.runner import TaskContext
from opsd.state import utcnow
from tasks.analysis_minutes import last_closed_minute_end, minute_text, minutes_between
from tasks.backup_age import newest_backup

DESCRIPTION = (
    "Publish AnalysisCount, AnomalyCount and ProcessingTime per minute since the last run, "
    "DatabaseSizeBytes and BackupAgeSeconds to CloudWatch, reading the app database read-only."
)

WATERMARK_KEY = "publish-metrics.watermark"
LEASE = timedelta(minutes=10)
# CloudWatch refuses data points older than two weeks; keep a margin for the run itself.
LOOKBACK = timedelta(days=14) - timedelta(minutes=30)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print what was published as JSON")


def run(ctx: TaskContext, args: argparse.Namespace) -> TaskResult:
    return publish_metrics(ctx, utcnow(), as_json=bool(args.json))


def _ensure_lease_table(conn: sqlite3.Connection) -> None:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS task_leases ("
        "task TEXT PRIMARY KEY, run_id TEXT NOT NULL, expires_at TEXT NOT NULL)"
    )


def take_lease(conn: sqlite3.Connection, task: str, run_id: str, now: datetime) -> bool:
    _ensure_lease_table(conn)
    expires = (now + LEASE).isoformat()
    taken = conn.execute(
        "INSERT INTO task_leases (task, run_id, expires_at) VALUES (?, ?, ?) "
        "ON CONFLICT (task) DO UPDATE SET run_id = excluded.run_id, "
        "expires_at = excluded.expires_at WHERE task_leases.expires_at < ?",
        (task, run_id, expires, now.isoformat()),
    )
    return taken.rowcount == 1


def release_lease(conn: sqlite3.Connection, task: str, run_id: str) -> None:
    conn.execute("DELETE FROM task_leases WHERE task = ? AND run_id = ?", (task, run_id))


def publish_metrics(ctx: TaskContext, now: datetime, as_json: bool = False) -> TaskResult:
    if not ctx.metrics.enabled:
        return TaskResult(ctx.task, Status.SKIPPED, "ENABLE_METRICS is false: nothing published")
    state = ctx.state
    if not take_lease(state.conn, ctx.task, ctx.run_id, now):
        return TaskResult(ctx.task, Status.SKIPPED, "another run is publishing: nothing to do")
    try:
        return _publish(ctx, now, as_json)
    finally:
        release_lease(state.conn, ctx.task, ctx.run_id)


def _publish(ctx: TaskContext, now: datetime, as_json: bool) -> TaskResult:
    settings = ctx.settings
    end = last_closed_minute_end(now)
    oldest = minute_text(now - LOOKBACK)
    watermark = ctx.state.get(WATERMARK_KEY)
    start = max(watermark or oldest, oldest)
    skipped_old = watermark is not None and watermark < oldest
    totals = {"minutes": 0, "analyses": 0, "anomalies": 0}
    # The minute of the newest datum handed to the publisher: when a call has gone out, every
    # minute before it is published (the publisher reads one datum past what it sends).
    reached = [start]

    def stream(conn: sqlite3.Connection) -> Iterator[Datum]:
        for minute in minutes_between(conn, start, end) if start < end else ():
            ctx.check_stop()
            totals["minutes"] += 1
            totals["analyses"] += minute.analyses
            totals["anomalies"] += minute.anomalies
            for datum in minute.data():
                reached[0] = minute.minute
                yield datum
        reached[0] = max(end, start)
        yield from gauges

    def published_so_far() -> None:
        if reached[0] > start:
            ctx.state.set(WATERMARK_KEY, reached[0])

    try:
        conn = connect(settings.database_path, readonly=True, busy_timeout_ms=10_000)
    except DatabaseError as exc:
        raise TaskError(f"read app database: {exc}") from None
    try:
        gauges, backup_note, backup_problem = _gauges(ctx, now)
        calls = ctx.metrics.publish(stream(conn), after_call=published_so_far)
    except MetricsError as exc:
        raise TaskError(str(exc)) from None
    except sqlite3.DatabaseError as exc:
        raise TaskError(f"read analyses from {settings.database_path}: {exc}") from None
    except ValueError as exc:
        raise TaskError(f"read analyses: created_at is not ISO 8601 UTC text ({exc})") from None
    finally:
        conn.close()
    if start < end:
        # A run that dies before this line publishes its last minutes again (docs/METRICS.md).
        ctx.state.set(WATERMARK_KEY, end)
    report: dict[str, Any] = {
        "from_minute": start,
        "to_minute_exclusive": end,
        **totals,
        "backup": backup_note,
        "put_metric_data_calls": calls,
        "skipped_older_than_two_weeks": skipped_old,
    }
    message = (
        f"{totals['analyses']} analyses in {totals['minutes']} minutes "
        f"[{start}, {end}) in {calls} PutMetricData calls; {backup_note}"
    )
    if skipped_old:
        message += f"; minutes before {oldest} skipped (CloudWatch keeps two weeks)"
    output = json.dumps(report, indent=2) if as_json else message
    status = Status.FAILED if backup_problem else Status.OK
    return TaskResult(ctx.task, status, message, {"calls": calls, **totals}, output=output)


def _gauges(ctx: TaskContext, now: datetime) -> tuple[list[Datum], str, str | None]:
    """DatabaseSizeBytes and BackupAgeSeconds at `now`, a note on the backup, and a problem."""
    settings = ctx.settings
    try:
        size = settings.database_path.stat().st_size
    except OSError as exc:
        raise TaskError(f"read app database size: {exc}") from None
    gauges = [Datum("DatabaseSizeBytes", size, timestamp=now)]
    try:
        newest = newest_backup(ctx.clients("s3"), settings, now)
    except (ClientError, BotoCoreError) as exc:
        problem = describe_aws_error(f"list backups in {settings.s3_bucket_backups}", exc)
        return gauges, f"{problem}: BackupAgeSeconds not published", problem
    if newest is None:
        # With missing data treated as breaching, the backup-age alarm fires: as it should.
        return gauges, "no backup found: BackupAgeSeconds not published", None
    age = max(0.0, (now - newest[1]).total_seconds())
    gauges.append(Datum("BackupAgeSeconds", age, timestamp=now))
    return gauges, f"newest backup {newest[0]}, {age / 3600:.1f} h old", None

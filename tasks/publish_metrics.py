"""publish-metrics: app metrics from the database and the backup age, to CloudWatch.

Each run publishes the minutes that are over since its cursor (the first item not yet sent,
in the ops state) and moves the cursor with each PutMetricData call that succeeds. Where the
state cannot say what CloudWatch holds (a call cut short by a kill, the state missing or
unreadable, a CloudWatch that lost data) the run asks CloudWatch itself before sending again.
A lease keeps two runs from publishing the same minutes. See docs/METRICS.md.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from opsd.aws import describe_aws_error
from opsd.database import DatabaseError
from opsd.metrics import Datum, MetricsError, split_datum
from opsd.results import Status, TaskError, TaskResult
from opsd.runner import TaskContext
from opsd.state import Lease, LeaseHolder
from tasks.backups.app_database import (
    READ_ERRORS,
    ReadConnection,
    database_size_bytes,
    open_app_database,
)
from tasks.backups.store import BackupStore
from tasks.metrics.analysis_minutes import (
    MinuteTotals,
    first_minute_with_analyses,
    last_closed_minute_end,
    minute_text,
    minutes_between,
    parse_minute,
)
from tasks.metrics.cursor import Cursor, InFlight, Position, PublishState, parse_cursor
from tasks.metrics.readback import newest_published_minute, samples_in_minute

DESCRIPTION = (
    "Publish AnalysisCount, AnomalyCount and ProcessingTime per minute since the last run, "
    "DatabaseSizeBytes and BackupAgeSeconds to CloudWatch, reading the app database read-only."
)

# CloudWatch refuses data points older than two weeks; keep a margin for the run itself.
LOOKBACK = timedelta(days=14) - timedelta(minutes=30)
# How long AWS may take to show a fresh data point to GetMetricData; the embedded local
# endpoint shows it at once.
VISIBILITY_GRACE = timedelta(minutes=10)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print what was published as JSON")


def run(ctx: TaskContext, args: argparse.Namespace) -> TaskResult:
    return publish_metrics(ctx, ctx.clock(), as_json=bool(args.json))


class _Wait(Exception):
    """Not yet decidable whether a killed run's last call reached CloudWatch."""


def publish_metrics(ctx: TaskContext, now: datetime, as_json: bool = False) -> TaskResult:
    if not ctx.metrics.enabled:
        return TaskResult(ctx.task, Status.SKIPPED, "ENABLE_METRICS is false: nothing published")
    state = ctx.state
    notes: list[str] = []
    if state.set_aside is not None:
        notes.append(f"the ops state was not a database: moved aside to {state.set_aside.name}")
    with state.lease(ctx.task, ctx.run_id, now) as lease:
        holder = lease.holder
        if not lease.taken:
            assert holder is not None
            busy = f"{holder.describe()} is publishing (its lease runs to {holder.expires_at})"
            return TaskResult(ctx.task, Status.SKIPPED, f"{busy}: nothing to do")
        if holder is not None:
            notes.append(_dead_run(ctx, holder, lease.recorded_dead_run))
        return _Run(ctx, now, lease, notes).publish(as_json)


def _dead_run(ctx: TaskContext, holder: LeaseHolder, recorded: bool) -> str:
    """A run left its lease behind: it died. The state has given it the failed run record it
    lacked (`recorded`); it gets the TaskFailed it never published."""
    if recorded:
        dead = [Datum("TaskSucceeded", 0, task=ctx.task), Datum("TaskFailed", 1, task=ctx.task)]
        try:
            ctx.metrics.publish(dead)
        except MetricsError as exc:
            ctx.log.warning("dead run's TaskFailed not published", error=str(exc))
    ctx.log.warning("previous run died", dead_run_id=holder.run_id, lease=holder.expires_at)
    return f"{holder.describe()} died without finishing: recorded as failed"


class _Run:
    def __init__(self, ctx: TaskContext, now: datetime, lease: Lease, notes: list[str]) -> None:
        self.ctx = ctx
        self.now = now
        self.began = time.monotonic()
        self.lease = lease
        self.notes = notes
        self.state = PublishState(ctx.state)
        self.cloudwatch = ctx.clients("cloudwatch")
        self.end = last_closed_minute_end(now)
        self.floor = minute_text(now - LOOKBACK)
        self.grace = timedelta(0) if ctx.settings.is_local else VISIBILITY_GRACE
        self.cursor = Cursor(self.end)
        self.totals = {"minutes": 0, "analyses": 0, "anomalies": 0}

    def clock(self) -> datetime:
        """The run's `now`, moved on by the time the run has taken."""
        return self.now + timedelta(seconds=time.monotonic() - self.began)

    def publish(self, as_json: bool) -> TaskResult:
        ctx, settings = self.ctx, self.ctx.settings
        try:
            conn = open_app_database(settings)
        except DatabaseError as exc:
            raise TaskError(f"read app database: {exc}") from None
        try:
            try:
                start = self._starting_cursor(conn)
            except _Wait as wait:
                return TaskResult(ctx.task, Status.SKIPPED, str(wait))
            except (ClientError, BotoCoreError) as exc:
                raise TaskError(
                    describe_aws_error("read back what CloudWatch holds", exc)
                    + ": nothing published (the next run asks again)"
                ) from None
            self.cursor = start
            gauges, backup_note, backup_problem = _gauges(ctx, self.now, conn)
            calls = ctx.metrics.publish(
                self._stream(conn, start, gauges),
                before_call=self._before_call,
                after_call=self._after_call,
            )
        except MetricsError as exc:
            if isinstance(exc.__cause__, ClientError):
                # CloudWatch answered with an error: it did not take the call.
                self.state.move(self.cursor, self.clock())
            raise TaskError(str(exc)) from None
        except READ_ERRORS as exc:
            raise TaskError(f"read analyses from {settings.database_name}: {exc}") from None
        except ValueError as exc:
            raise TaskError(f"read analyses: created_at is not ISO 8601 UTC text ({exc})") from None
        finally:
            conn.close()
        if self.cursor < Cursor(self.end):
            self.state.move(Cursor(self.end), self.clock())
        return self._result(start, calls, backup_note, backup_problem, as_json)

    # Where to start -------------------------------------------------------------------------

    def _starting_cursor(self, conn: ReadConnection) -> Cursor:
        raw = self.state.raw_cursor()
        cursor = parse_cursor(raw)
        if raw is not None and cursor is None:
            self.notes.append(f"the stored watermark {str(raw)[:40]!r} is unreadable")
        in_flight, had_in_flight = self.state.in_flight()
        if had_in_flight and (in_flight is None or cursor != in_flight.start):
            self.notes.append("the record of the last call in flight is unreadable")
            cursor = None
        elif in_flight is not None:
            cursor = self._settle_in_flight(in_flight)
        if cursor is None:
            cursor = self._recover(conn)
        else:
            cursor = self._check_cloudwatch_still_holds(conn, cursor)
        if cursor.minute < self.floor:
            self.notes.append(f"minutes before {self.floor} skipped (CloudWatch keeps two weeks)")
            cursor = Cursor(self.floor)
            self.state.move(cursor, self.clock())
        return cursor

    def _settle_in_flight(self, record: InFlight) -> Cursor:
        """A run died after writing what its call carried and before recording it as sent."""
        witness = record.witness
        seen = samples_in_minute(self.cloudwatch, self.ctx.settings, witness.metric, witness.minute)
        if seen >= witness.samples:
            self.notes.append(
                f"run {record.run_id} died after its call for [{record.start}, {record.through}) "
                "reached CloudWatch: not sent again"
            )
            self.state.move(record.through, self.clock(), sent_minute=witness.minute)
            return record.through
        sent_at = datetime.fromisoformat(record.sent_at)
        if self.grace and self.clock() - sent_at < self.grace:
            raise _Wait(
                f"run {record.run_id} died sending [{record.start}, {record.through}) at "
                f"{record.sent_at}; CloudWatch does not show it yet: deciding after "
                f"{(sent_at + self.grace).isoformat(timespec='seconds')} (nothing sent)"
            )
        self.notes.append(
            f"run {record.run_id} died before its call for [{record.start}, {record.through}) "
            "reached CloudWatch: sending it again"
        )
        self.state.move(record.start, self.clock())
        return record.start

    def _resume_after_newest(self, conn: ReadConnection, before: datetime) -> Cursor:
        newest = newest_published_minute(
            self.cloudwatch, self.ctx.settings, self.now - LOOKBACK, before
        )
        if newest is not None:
            resume = minute_text(parse_minute(newest) + timedelta(minutes=1))
            self.notes.append(
                f"resumed after {newest}, the newest minute whose AnalysisCount CloudWatch holds"
            )
            return Cursor(resume)
        first = first_minute_with_analyses(conn, self.floor, self.end)
        self.notes.append(
            "CloudWatch holds no AnalysisCount of the last two weeks: "
            + (f"publishing the database's minutes from {first}" if first else "no analyses yet")
        )
        return Cursor(first or self.end)

    def _recover(self, conn: ReadConnection) -> Cursor:
        """No usable watermark: CloudWatch itself says how far it has been sent."""
        if not any("unreadable" in note for note in self.notes):
            self.notes.append("no watermark in the ops state (a first run, or the state was lost)")
        cursor = self._resume_after_newest(conn, self.now)
        self.state.move(cursor, self.clock(), clear_sent=True)
        return cursor

    def _check_cloudwatch_still_holds(self, conn: ReadConnection, cursor: Cursor) -> Cursor:
        """The newest minute sent long enough ago to be visible must still be in CloudWatch."""
        due = [
            (m, at)
            for m, at in self.state.sent()
            if self.clock() - datetime.fromisoformat(at) >= self.grace
        ]
        if not due:
            return cursor
        minute, sent_at = due[-1]
        try:
            held = samples_in_minute(self.cloudwatch, self.ctx.settings, "AnalysisCount", minute)
        except (ClientError, BotoCoreError) as exc:
            # Nothing is at stake in sending on: a later run checks this minute again.
            problem = describe_aws_error(f"check that CloudWatch still holds {minute}", exc)
            self.notes.append(problem)
            return cursor
        if held > 0:
            self.state.forget_sent_through(sent_at, self.clock())
            return cursor
        self.notes.append(
            f"CloudWatch no longer holds minute {minute}, sent {sent_at} (an endpoint that "
            "lost its data?)"
        )
        rewound = self._resume_after_newest(conn, parse_minute(cursor.minute))
        rewound = min(rewound, cursor)
        self.state.move(rewound, self.clock(), clear_sent=True)
        return rewound

    # What to send ---------------------------------------------------------------------------

    def _stream(self, conn: ReadConnection, start: Cursor, gauges: list[Datum]) -> Iterator[Datum]:
        if start.minute < self.end:
            for minute in minutes_between(conn, start.minute, self.end):
                self.ctx.check_stop()
                skip = start.item if minute.minute == start.minute else 0
                parts = _positioned(minute, skip)
                if skip == 0:
                    self.totals["minutes"] += 1
                    self.totals["analyses"] += minute.analyses
                    self.totals["anomalies"] += minute.anomalies
                yield from parts
        yield from gauges

    def _before_call(self, parts: list[Datum]) -> None:
        if self.lease.lost:
            raise TaskError(f"stopped before a PutMetricData call: {self.lease.lost}")
        positions = [p.ref for p in parts if isinstance(p.ref, Position)]
        if positions:
            sent_at = self.clock().isoformat()
            record = InFlight(
                self.ctx.run_id, self.cursor, positions[-1].after(), positions[0], sent_at
            )
            self.state.mark_in_flight(record, self.clock())

    def _after_call(self, parts: list[Datum]) -> None:
        positions = [p.ref for p in parts if isinstance(p.ref, Position)]
        if not positions:
            return
        counted = [p.minute for p in positions if p.metric == "AnalysisCount"]
        self.cursor = positions[-1].after()
        self.state.move(self.cursor, self.clock(), sent_minute=counted[-1] if counted else None)

    # What to say ----------------------------------------------------------------------------

    def _result(
        self,
        start: Cursor,
        calls: int,
        backup_note: str,
        backup_problem: str | None,
        as_json: bool,
    ) -> TaskResult:
        totals, end = self.totals, self.end
        report: dict[str, Any] = {
            "from_minute": start.minute,
            "to_minute_exclusive": end,
            **totals,
            "backup": backup_note,
            "put_metric_data_calls": calls,
            "notes": self.notes,
            "skipped_older_than_two_weeks": any(
                "CloudWatch keeps two weeks" in n for n in self.notes
            ),
        }
        window = f"[{start}, {end})" if start.minute < end else f"none (up to {end} already sent)"
        message = (
            f"{totals['analyses']} analyses in {totals['minutes']} minutes {window} in "
            f"{calls} PutMetricData calls; {backup_note}"
        )
        if self.notes:
            message += "; " + "; ".join(self.notes)
        output = json.dumps(report, indent=2) if as_json else message
        status = Status.FAILED if backup_problem else Status.OK
        details = {"calls": calls, **totals, "notes": len(self.notes)}
        return TaskResult(self.ctx.task, status, message, details, output=output)


def _positioned(minute: MinuteTotals, skip: int) -> list[Datum]:
    """The minute's items from index `skip` on, each carrying its Position."""
    parts = [part for datum in minute.data() for part in split_datum(datum)]
    samples: dict[str, float] = {}
    positioned = []
    for index, part in enumerate(parts):
        samples[part.name] = samples.get(part.name, 0.0) + (
            (sum(part.counts) or len(part.values)) if part.values else 1.0
        )
        if index >= skip:
            where = Position(minute.minute, index, part.name, samples[part.name])
            positioned.append(replace(part, ref=where))
    return positioned


def _gauges(
    ctx: TaskContext, now: datetime, conn: ReadConnection
) -> tuple[list[Datum], str, str | None]:
    """DatabaseSizeBytes and BackupAgeSeconds at the run's minute, a note on the backup, and a
    problem. The points carry the minute itself (what CloudWatch keeps), and the age is the
    backup's age at that minute, so the newest backup's time is the point's time minus its
    value."""
    settings = ctx.settings
    stamp = now.replace(second=0, microsecond=0)
    try:
        size = database_size_bytes(settings, conn)
    except (OSError, *READ_ERRORS) as exc:
        raise TaskError(f"read app database size: {exc}") from None
    gauges = [Datum("DatabaseSizeBytes", size, timestamp=stamp)]
    try:
        newest, _ = BackupStore.for_settings(settings, ctx.clients("s3")).newest(now)
    except TaskError as exc:
        return gauges, f"{exc}: BackupAgeSeconds not published", str(exc)
    if newest is None or newest.recorded_at is None:
        # With missing data treated as breaching, the backup-age alarm fires: as it should.
        return gauges, "no backup found: BackupAgeSeconds not published", None
    age = max(0.0, (stamp - newest.recorded_at).total_seconds())
    gauges.append(Datum("BackupAgeSeconds", age, timestamp=stamp))
    return gauges, f"newest backup {newest.key}, {age / 3600:.1f} h old", None

"""Analyses of the app database summed per minute, read a slice of time at a time.

The database (SQLite, or PostgreSQL with the same SQL) groups the rows by minute and by
processing time rounded to the millisecond (SQLite's sorter spills to temporary files, not to
memory); Python keeps one slice's minutes, so memory does not grow with the number of rows,
and the read lock is held only while a slice is read, never while metrics are sent.
`analyses.created_at` is ISO 8601 text in UTC
(`2026-11-24T06:00:12.5+00:00`): its first 16 characters are the minute, and text order is
time order.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from opsd.metrics import Datum
from tasks.backups.app_database import ReadConnection

MINUTE_FORMAT = "%Y-%m-%dT%H:%M"
SLICE = timedelta(days=1)

_GROUPED = """
SELECT substr(created_at, 1, 16) AS minute,
       CAST(round(processing_time_ms) AS INTEGER) AS ms,
       count(*) AS analyses,
       CAST(coalesce(sum(CASE WHEN is_anomaly THEN 1 ELSE 0 END), 0) AS INTEGER) AS anomalies
FROM analyses
WHERE created_at >= :start AND created_at < :end
GROUP BY minute, ms
ORDER BY minute, ms
"""


@dataclass
class MinuteTotals:
    minute: str
    analyses: int = 0
    anomalies: int = 0
    values: array[float] = field(default_factory=lambda: array("d"))
    counts: array[float] = field(default_factory=lambda: array("d"))

    def data(self) -> list[Datum]:
        stamp = parse_minute(self.minute)
        data = [
            Datum("AnalysisCount", self.analyses, timestamp=stamp),
            Datum("AnomalyCount", self.anomalies, timestamp=stamp),
        ]
        if self.values:
            data.append(
                Datum("ProcessingTime", values=self.values, counts=self.counts, timestamp=stamp)
            )
        return data


def minute_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(MINUTE_FORMAT)


def parse_minute(text: str) -> datetime:
    return datetime.strptime(text, MINUTE_FORMAT).replace(tzinfo=UTC)


def last_closed_minute_end(now: datetime) -> str:
    """The exclusive end of the minutes that are over: a minute is published a minute after it
    ends, so a row written late in it is not lost."""
    return minute_text(now - timedelta(minutes=1))


def read_minutes(conn: ReadConnection, start: str, end: str) -> list[MinuteTotals]:
    """Per-minute totals for minutes in [start, end), both "YYYY-MM-DDTHH:MM", oldest first."""
    minutes: list[MinuteTotals] = []
    for minute, ms, analyses, anomalies in conn.execute(_GROUPED, {"start": start, "end": end}):
        if not minutes or minute != minutes[-1].minute:
            parse_minute(minute)
            minutes.append(MinuteTotals(minute))
        current = minutes[-1]
        current.analyses += analyses
        current.anomalies += anomalies
        if ms is not None:
            current.values.append(float(ms))
            current.counts.append(float(analyses))
    return minutes


def minutes_between(conn: ReadConnection, start: str, end: str) -> Iterator[MinuteTotals]:
    """Every minute with analyses in [start, end), read one SLICE at a time."""
    low = parse_minute(start)
    stop = parse_minute(end)
    while low < stop:
        high = min(low + SLICE, stop)
        yield from read_minutes(conn, minute_text(low), minute_text(high))
        low = high


def first_minute_with_analyses(conn: ReadConnection, start: str, end: str) -> str | None:
    """The oldest minute in [start, end) that has an analysis, or None."""
    row = conn.execute(
        "SELECT min(created_at) FROM analyses WHERE created_at >= ? AND created_at < ?",
        (start, end),
    ).fetchone()
    return None if row is None or row[0] is None else str(row[0])[:16]

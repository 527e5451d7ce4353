"""What CloudWatch already holds of publish-metrics' minutes (GetMetricData).

CloudWatch has no idempotency key, so before sending again anything it may already have, the
publisher asks it: the samples of one metric in one minute (did a call arrive?), and the newest
minute that has an AnalysisCount (where to resume when the ops state is gone or CloudWatch lost
data). The newest minute is found coarse to fine (days, then hours, then minutes), three small
requests instead of one over 20,160 minutes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from opsd.metric_catalog import ENVIRONMENT
from opsd.settings import Settings
from tasks.metrics.analysis_minutes import minute_text, parse_minute

MINUTE = timedelta(minutes=1)


def _points(
    cloudwatch: Any,
    settings: Settings,
    metric: str,
    stat: str,
    start: datetime,
    end: datetime,
    period: timedelta,
) -> list[tuple[datetime, float]]:
    """(timestamp, value) of every period with data in [start, end), newest first."""
    metric_stat = {
        "Metric": {
            "Namespace": settings.metrics_namespace,
            "MetricName": metric,
            "Dimensions": [{"Name": ENVIRONMENT, "Value": settings.environment}],
        },
        "Period": int(period.total_seconds()),
        "Stat": stat,
    }
    query = {"Id": "q", "MetricStat": metric_stat, "ReturnData": True}
    pages = cloudwatch.get_paginator("get_metric_data").paginate(
        MetricDataQueries=[query], StartTime=start, EndTime=end, ScanBy="TimestampDescending"
    )
    points: list[tuple[datetime, float]] = []
    for result in pages.search("MetricDataResults[]"):
        points += zip(result.get("Timestamps", []), result.get("Values", []), strict=False)
    points.sort(key=lambda point: point[0], reverse=True)
    return [(t.astimezone(UTC), v) for t, v in points]


def samples_in_minute(cloudwatch: Any, settings: Settings, metric: str, minute: str) -> float:
    """CloudWatch's SampleCount of `metric` in `minute` (0 when it has none)."""
    start = parse_minute(minute)
    points = _points(cloudwatch, settings, metric, "SampleCount", start, start + MINUTE, MINUTE)
    return sum(value for _, value in points)


def newest_published_minute(
    cloudwatch: Any, settings: Settings, since: datetime, before: datetime
) -> str | None:
    """The newest minute in [since, before) with an AnalysisCount in CloudWatch, or None."""
    low = since.replace(hour=0, minute=0, second=0, microsecond=0)
    high = before
    for period in (timedelta(days=1), timedelta(hours=1), MINUTE):
        points = _points(cloudwatch, settings, "AnalysisCount", "SampleCount", low, high, period)
        if not points:
            return None
        low = max(points[0][0], low)
        high = min(low + period, before)
    return minute_text(low)

"""The dashboard's operations panel: the metrics the operations tasks publish, read back
from CloudWatch (GetMetricData). A CloudWatch failure is shown in the panel, never raised."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from app.settings import AppSettings
from opsd.aws import AwsClients, describe_aws_error
from opsd.metric_catalog import ENVIRONMENT, spec


@dataclass(frozen=True)
class PanelMetric:
    """One line of the panel: a metric, how its points are reduced, over which window."""

    metric: str
    label: str
    stat: str
    window: timedelta
    reduce: str  # "latest" value or "sum" of the window


PANEL_METRICS: tuple[PanelMetric, ...] = (
    PanelMetric("BackupAgeSeconds", "Newest backup age", "Maximum", timedelta(days=1), "latest"),
    PanelMetric("DatabaseSizeBytes", "Database size", "Maximum", timedelta(days=1), "latest"),
    PanelMetric("BackupSizeBytes", "Last backup size", "Maximum", timedelta(days=2), "latest"),
    PanelMetric(
        "RestoreDrillSucceeded", "Restore drills passed (7 d)", "Sum", timedelta(days=7), "sum"
    ),
    PanelMetric(
        "RestoreDrillFailed", "Restore drills failed (7 d)", "Sum", timedelta(days=7), "sum"
    ),
    PanelMetric("BudgetActualPercent", "Budget spent", "Maximum", timedelta(days=2), "latest"),
    PanelMetric("BudgetForecastPercent", "Budget forecast", "Maximum", timedelta(days=2), "latest"),
    PanelMetric(
        "LifecycleViolations", "Lifecycle violations", "Maximum", timedelta(days=2), "latest"
    ),
)
# One minute: a standard-resolution point's own time, as CloudWatch keeps it.
PERIOD_S = 60
MINUTE = timedelta(minutes=1)


@dataclass(frozen=True)
class PanelValue:
    metric: str
    label: str
    unit: str
    value: float | None
    at: datetime | None
    # An age: the moment it counts from, so the page shows it as of the moment it is drawn.
    since: datetime | None = None
    note: str | None = None

    def current_value(self, now: datetime | None = None) -> float | None:
        if self.since is None:
            return self.value
        return max(0.0, ((now or datetime.now(UTC)) - self.since).total_seconds())


@dataclass
class PanelReading:
    values: list[PanelValue] = field(default_factory=list)
    error: str | None = None
    read_at: datetime | None = None


def _query(index: int, item: PanelMetric, namespace: str, environment: str) -> dict[str, Any]:
    return {
        "Id": f"m{index}",
        "Label": item.metric,
        "MetricStat": {
            "Metric": {
                "Namespace": namespace,
                "MetricName": item.metric,
                "Dimensions": [{"Name": ENVIRONMENT, "Value": environment}],
            },
            "Period": PERIOD_S,
            "Stat": item.stat,
        },
        "ReturnData": True,
    }


def read_panel(
    settings: AppSettings, clients: AwsClients, now: datetime | None = None
) -> PanelReading:
    now = now or datetime.now(UTC)
    longest = max(item.window for item in PANEL_METRICS)
    # Whole minutes, so each point comes back at its own minute (not at a bucket that starts
    # wherever `now` happened to fall).
    first = (now - longest).replace(second=0, microsecond=0)
    last = now.replace(second=0, microsecond=0) + MINUTE
    queries = [
        _query(i, item, settings.metrics_namespace, settings.environment)
        for i, item in enumerate(PANEL_METRICS)
    ]
    points: dict[str, list[tuple[datetime, float]]] = {q["Id"]: [] for q in queries}
    try:
        cloudwatch = clients("cloudwatch")
        request: dict[str, Any] = {
            "MetricDataQueries": queries,
            "StartTime": first,
            "EndTime": last,
            "ScanBy": "TimestampDescending",
        }
        while True:
            answer = cloudwatch.get_metric_data(**request)
            for result in answer.get("MetricDataResults", []):
                pairs = zip(result.get("Timestamps", []), result.get("Values", []), strict=False)
                points.setdefault(result["Id"], []).extend(pairs)
            token = answer.get("NextToken")
            if not token:
                break
            request["NextToken"] = token
    except (ClientError, BotoCoreError) as exc:
        return PanelReading(
            error=describe_aws_error("read metrics from CloudWatch", exc), read_at=now
        )
    values = {}
    for i, item in enumerate(PANEL_METRICS):
        in_window = [(t, v) for t, v in points[f"m{i}"] if t >= now - item.window]
        in_window.sort(key=lambda pair: pair[0])
        value = at = None
        if in_window:
            at = in_window[-1][0]
            value = sum(v for _, v in in_window) if item.reduce == "sum" else in_window[-1][1]
        values[item.metric] = PanelValue(item.metric, item.label, spec(item.metric).unit, value, at)
    values["BackupAgeSeconds"] = newest_backup_age(values)
    return PanelReading(values=list(values.values()), read_at=now)


def newest_backup_age(values: dict[str, PanelValue]) -> PanelValue:
    """The newest backup's age, counted from the backup itself.

    publish-metrics sends BackupAgeSeconds and DatabaseSizeBytes together, at its run's minute,
    the age as of that minute: so the backup was taken at the point's time minus its value. A
    backup taken since that run published BackupSizeBytes at its own minute. When the newest
    publish-metrics run sent a database size but no backup age, it found no backup.
    """
    age, run, taken = (
        values["BackupAgeSeconds"],
        values["DatabaseSizeBytes"],
        values["BackupSizeBytes"],
    )
    listed = None
    if age.at is not None and age.value is not None:
        listed = age.at - timedelta(seconds=age.value)
    if taken.at is not None and (run.at is None or taken.at > run.at):
        newest = max(taken.at, listed) if listed else taken.at
        return replace(age, at=taken.at, since=newest)
    if run.at is not None and (age.at is None or age.at < run.at):
        note = f"no recent backup: publish-metrics at {run.at:%H:%M} UTC found none to measure"
        return replace(age, value=None, at=run.at, note=note)
    if listed is None:
        return age
    return replace(age, since=listed)


class OperationsPanel:
    """Caches a reading for `ttl_s`, so reloading the dashboard does not cost a call each."""

    def __init__(self, settings: AppSettings, clients: AwsClients) -> None:
        self._settings = settings
        self._clients = clients
        self._ttl_s = settings.operations_panel_cache_seconds
        self._lock = threading.Lock()
        self._cached: PanelReading | None = None
        self._cached_at = 0.0

    def reading(self) -> PanelReading:
        with self._lock:
            if self._cached is None or time.monotonic() - self._cached_at >= self._ttl_s:
                self._cached = read_panel(self._settings, self._clients)
                self._cached_at = time.monotonic()
            return self._cached

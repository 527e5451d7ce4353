"""The dashboard's operations panel: the metrics the operations tasks publish, read back
from CloudWatch (GetMetricData). A CloudWatch failure is shown in the panel, never raised."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
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
PERIOD_S = 300


@dataclass(frozen=True)
class PanelValue:
    metric: str
    label: str
    unit: str
    value: float | None
    at: datetime | None


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
    queries = [
        _query(i, item, settings.metrics_namespace, settings.environment)
        for i, item in enumerate(PANEL_METRICS)
    ]
    points: dict[str, list[tuple[datetime, float]]] = {q["Id"]: [] for q in queries}
    try:
        cloudwatch = clients("cloudwatch")
        request: dict[str, Any] = {
            "MetricDataQueries": queries,
            "StartTime": now - longest,
            "EndTime": now,
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
    values = []
    for i, item in enumerate(PANEL_METRICS):
        in_window = [(t, v) for t, v in points[f"m{i}"] if t >= now - item.window]
        in_window.sort(key=lambda pair: pair[0])
        value = at = None
        if in_window:
            at = in_window[-1][0]
            value = sum(v for _, v in in_window) if item.reduce == "sum" else in_window[-1][1]
        values.append(PanelValue(item.metric, item.label, spec(item.metric).unit, value, at))
    return PanelReading(values=values, read_at=now)


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

"""Publishing catalog metrics to CloudWatch in as few PutMetricData calls as the limits allow."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog

from opsd.aws import describe_aws_error
from opsd.metric_catalog import ENVIRONMENT, TASK, spec
from opsd.settings import Settings

# PutMetricData limits: 1,000 metric data items, 150 distinct values per Values array,
# 1 MB payload. The size estimate below is deliberately generous.
MAX_ITEMS_PER_CALL = 1000
MAX_VALUES_PER_ITEM = 150
MAX_PAYLOAD_BYTES = 1_000_000
_PAYLOAD_BUDGET = 800_000

log = structlog.get_logger()


@dataclass(frozen=True)
class Datum:
    """One catalog metric value, or a Values/Counts distribution, at an optional time."""

    name: str
    value: float | None = None
    values: Sequence[float] = ()
    counts: Sequence[float] = ()
    timestamp: datetime | None = None
    task: str | None = None


def _split(datum: Datum) -> Iterator[Datum]:
    if len(datum.values) <= MAX_VALUES_PER_ITEM:
        yield datum
        return
    counts = list(datum.counts) or [1.0] * len(datum.values)
    for start in range(0, len(datum.values), MAX_VALUES_PER_ITEM):
        stop = start + MAX_VALUES_PER_ITEM
        yield Datum(
            datum.name,
            None,
            datum.values[start:stop],
            counts[start:stop],
            datum.timestamp,
            datum.task,
        )


def to_metric_data(datum: Datum, environment: str) -> dict[str, Any]:
    metric = spec(datum.name)
    dimensions = [{"Name": ENVIRONMENT, "Value": environment}]
    if TASK in metric.dimensions:
        if not datum.task:
            raise ValueError(f"{datum.name}: needs a Task dimension")
        dimensions.append({"Name": TASK, "Value": datum.task})
    item: dict[str, Any] = {
        "MetricName": metric.name,
        "Dimensions": dimensions,
        "Unit": metric.unit,
    }
    if datum.values:
        item["Values"] = [float(v) for v in datum.values]
        if datum.counts:
            item["Counts"] = [float(c) for c in datum.counts]
    elif datum.value is not None:
        item["Value"] = float(datum.value)
    else:
        raise ValueError(f"{datum.name}: a datum needs a value or values")
    if datum.timestamp is not None:
        item["Timestamp"] = datum.timestamp
    return item


def _estimated_size(item: dict[str, Any]) -> int:
    # Query-protocol encoding repeats the member path for every field: ~60 bytes a field.
    fields = 6 + 2 * len(item["Dimensions"]) + len(item.get("Values", ())) * 2
    return 120 + 60 * fields


def batches(items: Iterable[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    size = 0
    for item in items:
        item_size = _estimated_size(item)
        if batch and (len(batch) >= MAX_ITEMS_PER_CALL or size + item_size > _PAYLOAD_BUDGET):
            yield batch
            batch, size = [], 0
        batch.append(item)
        size += item_size
    if batch:
        yield batch


class MetricsPublisher:
    def __init__(self, settings: Settings, cloudwatch: Any) -> None:
        self._settings = settings
        self._cloudwatch = cloudwatch

    @property
    def enabled(self) -> bool:
        return self._settings.enable_metrics

    def publish(self, data: Iterable[Datum]) -> int:
        """Send every datum; returns the number of PutMetricData calls made."""
        if not self.enabled:
            return 0
        items = (
            to_metric_data(part, self._settings.environment)
            for datum in data
            for part in _split(datum)
        )
        calls = 0
        for batch in batches(items):
            try:
                self._cloudwatch.put_metric_data(
                    Namespace=self._settings.metrics_namespace, MetricData=batch
                )
            except Exception as exc:
                raise MetricsError(describe_aws_error("put metric data", exc)) from exc
            calls += 1
        return calls


class MetricsError(Exception):
    pass

"""Publishing catalog metrics to CloudWatch in as few PutMetricData calls as the limits allow."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import cached_property
from typing import Any

import botocore.session
import structlog
from botocore.model import ServiceModel
from botocore.serialize import create_serializer

from opsd.aws import describe_aws_error
from opsd.metric_catalog import ENVIRONMENT, TASK, spec
from opsd.results import TaskError
from opsd.settings import Settings

# PutMetricData limits: 1,000 metric data items, 150 distinct values per Values array,
# 1 MB payload (counted here uncompressed, in decimal megabytes, to be safe either way).
MAX_ITEMS_PER_CALL = 1000
MAX_VALUES_PER_ITEM = 150
MAX_PAYLOAD_BYTES = 1_000_000
# Array headers grow by a few bytes as a batch grows; the namespace is measured as it is.
_HEADER_SLACK = 16

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
    # The publisher's caller's own note on the datum (never sent): handed back per call.
    ref: Any = field(default=None, compare=False, repr=False)


def _distinct(datum: Datum) -> tuple[list[float], list[float]]:
    """Values with their counts, a repeated value merged into one entry."""
    counts = list(datum.counts) or [1.0] * len(datum.values)
    merged: dict[float, float] = {}
    for value, count in zip(datum.values, counts, strict=True):
        merged[float(value)] = merged.get(float(value), 0.0) + float(count)
    return list(merged), list(merged.values())


def split_datum(datum: Datum) -> Iterator[Datum]:
    """The datum as items PutMetricData takes: at most 150 distinct values each."""
    if len(datum.values) <= MAX_VALUES_PER_ITEM and len(set(datum.values)) == len(datum.values):
        yield datum
        return
    values, counts = _distinct(datum)
    for start in range(0, len(values), MAX_VALUES_PER_ITEM):
        stop = start + MAX_VALUES_PER_ITEM
        yield replace(datum, value=None, values=values[start:stop], counts=counts[start:stop])


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


class PayloadSizer:
    """Exact request-body sizes of PutMetricData items, measured with botocore's serializer.

    With the binary (CBOR) protocol an item's size depends only on its shape, so each shape is
    serialized once and cached; with a text protocol every item is measured.
    """

    def __init__(self, service_model: ServiceModel | None = None, namespace: str = "") -> None:
        model = service_model or botocore.session.get_session().get_service_model("cloudwatch")
        self._operation = model.operation_model("PutMetricData")
        self._serializer = create_serializer(model.protocol, include_validation=False)
        self._fixed_width = model.protocol == "smithy-rpc-v2-cbor"
        self._namespace = namespace or "DrawingAnalysis"
        self._cache: dict[tuple[Any, ...], int] = {}
        self.base = self._measure([]) + _HEADER_SLACK

    def _measure(self, items: list[dict[str, Any]]) -> int:
        params = {"Namespace": self._namespace, "MetricData": items}
        return len(self._serializer.serialize_to_request(params, self._operation)["body"])

    def __call__(self, item: dict[str, Any]) -> int:
        if not self._fixed_width:
            # Text protocols spell out the item's position: allow for four-digit indexes.
            indexes = 4 * (4 + 2 * len(item.get("Values", ())))
            return self._measure([item]) - self.base + _HEADER_SLACK + indexes
        stamp = item.get("Timestamp")
        key = (
            item["MetricName"],
            tuple((d["Name"], d["Value"]) for d in item["Dimensions"]),
            item.get("Unit"),
            "Value" in item,
            len(item.get("Values", ())),
            "Counts" in item,
            None if stamp is None else bool(stamp.microsecond),
        )
        size = self._cache.get(key)
        if size is None:
            size = self._cache[key] = self._measure([item]) - self.base + _HEADER_SLACK
        return size


def batches(
    items: Iterable[dict[str, Any]], sizer: PayloadSizer | None = None
) -> Iterator[list[dict[str, Any]]]:
    """Items in order, packed into the fewest calls the item and payload limits allow."""
    for batch in _packed(((None, item) for item in items), sizer or PayloadSizer()):
        yield [item for _, item in batch]


def _packed(
    pairs: Iterable[tuple[Any, dict[str, Any]]], sizer: PayloadSizer
) -> Iterator[list[tuple[Any, dict[str, Any]]]]:
    room = MAX_PAYLOAD_BYTES - sizer.base
    batch: list[tuple[Any, dict[str, Any]]] = []
    size = 0
    for pair in pairs:
        item_size = sizer(pair[1])
        if batch and (len(batch) >= MAX_ITEMS_PER_CALL or size + item_size > room):
            yield batch
            batch, size = [], 0
        batch.append(pair)
        size += item_size
    if batch:
        yield batch


def fewest_possible_calls(item_count: int, payload_bytes: int, sizer: PayloadSizer) -> int:
    """The lower bound set by the limits: by item count and by total payload."""
    by_items = math.ceil(item_count / MAX_ITEMS_PER_CALL)
    by_bytes = math.ceil(payload_bytes / (MAX_PAYLOAD_BYTES - sizer.base))
    return max(by_items, by_bytes)


class MetricsPublisher:
    def __init__(self, settings: Settings, cloudwatch: Any) -> None:
        self._settings = settings
        self._cloudwatch = cloudwatch

    @cached_property
    def sizer(self) -> PayloadSizer:
        model = getattr(getattr(self._cloudwatch, "meta", None), "service_model", None)
        return PayloadSizer(model, self._settings.metrics_namespace)

    @property
    def enabled(self) -> bool:
        return self._settings.enable_metrics

    def publish(
        self,
        data: Iterable[Datum],
        before_call: Callable[[list[Datum]], None] | None = None,
        after_call: Callable[[list[Datum]], None] | None = None,
    ) -> int:
        """Send every datum; returns the number of PutMetricData calls made.

        `data` is consumed lazily. `before_call` and `after_call` get the items (split data)
        of each call, right before it is sent and right after it succeeded.
        """
        if not self.enabled:
            return 0
        parts = (part for datum in data for part in split_datum(datum))
        environment = self._settings.environment
        calls = 0
        for batch in _packed(((p, to_metric_data(p, environment)) for p in parts), self.sizer):
            sent = [part for part, _ in batch]
            if before_call is not None:
                before_call(sent)
            try:
                self._cloudwatch.put_metric_data(
                    Namespace=self._settings.metrics_namespace,
                    MetricData=[item for _, item in batch],
                )
            except Exception as exc:
                raise MetricsError(describe_aws_error("put metric data", exc)) from exc
            calls += 1
            if after_call is not None:
                after_call(sent)
        return calls


class MetricsError(TaskError):
    """PutMetricData failed: a task that must publish fails with this one line."""

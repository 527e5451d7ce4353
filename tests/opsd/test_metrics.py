import math
from datetime import UTC, datetime

import boto3
import pytest

from opsd.aws import AwsClients
from opsd.metrics import MAX_ITEMS_PER_CALL, Datum, MetricsPublisher, batches, to_metric_data
from opsd.settings import Settings


class RecordingCloudWatch:
    def __init__(self) -> None:
        self.calls: list[dict] = []

    def put_metric_data(self, **kwargs: object) -> None:
        self.calls.append(kwargs)


def test_unknown_metric_name_is_refused() -> None:
    with pytest.raises(KeyError, match="NotAMetric: not a metric of the catalog"):
        to_metric_data(Datum("NotAMetric", 1), "local")


def test_task_metric_needs_its_task_dimension() -> None:
    with pytest.raises(ValueError, match="TaskFailed: needs a Task dimension"):
        to_metric_data(Datum("TaskFailed", 1), "local")


def test_items_are_batched_by_the_item_limit(settings: Settings) -> None:
    cloudwatch = RecordingCloudWatch()
    data = [Datum("AnalysisCount", i) for i in range(2 * MAX_ITEMS_PER_CALL + 1)]
    assert MetricsPublisher(settings, cloudwatch).publish(data) == 3
    assert [len(c["MetricData"]) for c in cloudwatch.calls] == [1000, 1000, 1]
    assert all(c["Namespace"] == "DrawingAnalysis" for c in cloudwatch.calls)


def test_long_value_arrays_are_split_at_150(settings: Settings) -> None:
    cloudwatch = RecordingCloudWatch()
    stamp = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)
    values = [float(v) for v in range(400)]
    MetricsPublisher(settings, cloudwatch).publish(
        [Datum("ProcessingTime", values=values, counts=[2.0] * 400, timestamp=stamp)]
    )
    items = cloudwatch.calls[0]["MetricData"]
    assert [len(i["Values"]) for i in items] == [150, 150, 100]
    assert sum(sum(i["Counts"]) for i in items) == 800
    assert all(i["Timestamp"] == stamp and i["Unit"] == "Milliseconds" for i in items)


def test_payload_budget_splits_large_distributions() -> None:
    item = to_metric_data(Datum("ProcessingTime", values=[1.0] * 150), "local")
    sizes = [len(b) for b in batches([item] * 1000)]
    assert sum(sizes) == 1000
    assert len(sizes) == math.ceil(1000 / sizes[0]) and sizes[0] < 1000


def test_published_metrics_reach_cloudwatch(aws: AwsClients, settings: Settings) -> None:
    publisher = MetricsPublisher(settings, aws("cloudwatch"))
    assert publisher.publish([Datum("BackupSizeBytes", 1024), Datum("TaskFailed", 1, task="b")])
    cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
    listed = cloudwatch.list_metrics(Namespace=settings.metrics_namespace)["Metrics"]
    assert {m["MetricName"] for m in listed} == {"BackupSizeBytes", "TaskFailed"}

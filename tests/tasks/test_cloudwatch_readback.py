"""Reading back what CloudWatch holds: every page of GetMetricData counts."""

from __future__ import annotations

from datetime import UTC, datetime

import boto3
from botocore.stub import ANY, Stubber

from opsd.settings import Settings
from tasks.metrics.readback import samples_in_minute

MINUTE = datetime(2026, 11, 24, 6, 1, tzinfo=UTC)


def page(value: float, token: str | None = None) -> dict[str, object]:
    answer: dict[str, object] = {
        "MetricDataResults": [
            {"Id": "q", "Timestamps": [MINUTE], "Values": [value], "StatusCode": "Complete"}
        ]
    }
    return {**answer, "NextToken": token} if token else answer


def test_samples_of_a_minute_add_up_over_every_page(settings: Settings) -> None:
    cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
    request = {"MetricDataQueries": ANY, "StartTime": ANY, "EndTime": ANY, "ScanBy": ANY}
    with Stubber(cloudwatch) as stub:
        stub.add_response("get_metric_data", page(2, token="more"), request)
        stub.add_response("get_metric_data", page(3), {**request, "NextToken": "more"})
        assert samples_in_minute(cloudwatch, settings, "AnalysisCount", "2026-11-24T06:01") == 5
        stub.assert_no_pending_responses()

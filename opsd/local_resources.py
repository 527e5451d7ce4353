"""What local mode creates on the embedded AWS endpoint (ARCHITECTURE §5), with the declared policy.

`provision(settings, clients)` makes the three buckets and applies the storage policy to them
through the same functions `lifecycle-check --fix` uses, the log groups with their retention,
the alert topic and the monthly budget with a plausible spend. It is idempotent: a second call
finds everything in place, re-applies the policy and changes nothing else.
"""

from __future__ import annotations

import calendar
import json
import os
import ssl
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from opsd import storage_policy as policy
from opsd.aws import AwsClients, error_code
from opsd.settings import Settings

# A local month spends this share of the limit: below every alert threshold.
LOCAL_SPEND_SHARE = 0.55
LOCAL_SERVICE_SHARES = {
    "Amazon Elastic Container Service": 0.46,
    "Amazon Elastic File System": 0.18,
    "Amazon Simple Storage Service": 0.14,
    "AmazonCloudWatch": 0.12,
    "Amazon Simple Notification Service": 0.01,
    "Amazon Virtual Private Cloud": 0.09,
}


@dataclass
class LocalResources:
    topic_arn: str
    buckets: list[str]
    created: list[str]


def provision(
    settings: Settings, clients: AwsClients, now: datetime | None = None
) -> LocalResources:
    now = now or datetime.now(UTC)
    created: list[str] = []
    s3, logs = clients("s3"), clients("logs")
    buckets = []
    for kind in policy.BUCKET_KINDS:
        bucket = policy.bucket_name(kind, settings)
        if _create_bucket(s3, bucket, settings.aws_default_region):
            created.append(f"bucket {bucket}")
        for rule in policy.bucket_rules(kind):
            policy.apply_bucket_rule(s3, kind, rule, settings)
        buckets.append(bucket)
    for name in policy.log_group_names(settings):
        if "(created)" in policy.apply_log_retention(logs, name):
            created.append(f"log group {name}")
    topic = clients("sns").create_topic(Name=f"drawing-analysis-alerts-{settings.environment}")
    if _create_budget(clients, settings, now):
        created.append(f"budget {settings.budget_name}")
        if settings.aws_endpoint_url:
            _queue_local_cost_breakdown(settings, now)
    return LocalResources(str(topic["TopicArn"]), buckets, created)


def _create_bucket(s3: Any, bucket: str, region: str) -> bool:
    # us-east-1 answers 200 to creating a bucket one already owns, so look first.
    try:
        s3.head_bucket(Bucket=bucket)
        return False
    except ClientError as exc:
        if error_code(exc) not in ("404", "NoSuchBucket", "NotFound"):
            raise
    options: dict[str, Any] = {}
    if region != "us-east-1":
        options["CreateBucketConfiguration"] = {"LocationConstraint": region}
    try:
        s3.create_bucket(Bucket=bucket, **options)
    except ClientError as exc:
        if error_code(exc) in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            return False
        raise
    return True


def local_month_spend(limit: float, now: datetime) -> tuple[float, float]:
    """(actual, forecast) in USD: a steady month that ends at LOCAL_SPEND_SHARE of the limit."""
    days = calendar.monthrange(now.year, now.month)[1]
    elapsed = (now.day - 1 + now.hour / 24) / days
    forecast = limit * LOCAL_SPEND_SHARE
    return round(forecast * elapsed, 2), round(forecast, 2)


def _create_budget(clients: AwsClients, settings: Settings, now: datetime) -> bool:
    account = clients("sts").get_caller_identity()["Account"]
    actual, forecast = local_month_spend(settings.budget_limit_usd, now)
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    budget = {
        "BudgetName": settings.budget_name,
        "BudgetLimit": {"Amount": f"{settings.budget_limit_usd:.2f}", "Unit": "USD"},
        "TimeUnit": "MONTHLY",
        "BudgetType": "COST",
        "TimePeriod": {"Start": month_start},
        "CalculatedSpend": {
            "ActualSpend": {"Amount": f"{actual:.2f}", "Unit": "USD"},
            "ForecastedSpend": {"Amount": f"{forecast:.2f}", "Unit": "USD"},
        },
    }
    try:
        clients("budgets").create_budget(AccountId=account, Budget=budget)
    except ClientError as exc:
        if error_code(exc) == "DuplicateRecordException":
            return False
        raise
    return True


def _queue_local_cost_breakdown(settings: Settings, now: datetime) -> None:
    """A Cost Explorer answer, grouped by service, that adds up to the local actual spend, put
    in the queue of results moto answers Cost Explorer from (filled through its own API)."""
    actual, _ = local_month_spend(settings.budget_limit_usd, now)
    groups = [
        {
            "Keys": [service],
            "Metrics": {"UnblendedCost": {"Amount": f"{actual * share:.4f}", "Unit": "USD"}},
        }
        for service, share in LOCAL_SERVICE_SHARES.items()
    ]
    answer = {
        "ResultsByTime": [
            {
                "TimePeriod": {"Start": now.strftime("%Y-%m-01"), "End": now.strftime("%Y-%m-%d")},
                "Total": {},
                "Groups": groups,
                "Estimated": True,
            }
        ],
        "DimensionValueAttributes": [],
    }
    body = json.dumps({"results": [answer]}).encode()
    request = urllib.request.Request(
        f"{settings.aws_endpoint_url}/moto-api/static/ce/cost-and-usage-results",
        data=body,
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    # The embedded endpoint speaks TLS with its own certificate, trusted via AWS_CA_BUNDLE.
    context = ssl.create_default_context(cafile=os.environ.get("AWS_CA_BUNDLE"))
    with urllib.request.urlopen(request, timeout=10, context=context) as response:
        response.read()

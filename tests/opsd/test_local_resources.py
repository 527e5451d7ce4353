from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from datetime import UTC, datetime

import boto3
import pytest
from moto import mock_aws
from moto.server import ThreadedMotoServer

from opsd import storage_policy as policy
from opsd.aws import AwsClients
from opsd.local_resources import local_month_spend, provision
from opsd.runner import TaskContext
from opsd.settings import Settings
from tasks import lifecycle_check
from tasks.budget_poll import poll_budget

NOW = datetime(2026, 11, 16, 0, 0, tzinfo=UTC)


@pytest.fixture
def bare_aws(settings: Settings) -> Iterator[AwsClients]:
    """moto in-process with nothing created yet."""
    with mock_aws():
        yield AwsClients(settings)


def _lifecycle_check(settings: Settings, clients: AwsClients) -> dict:
    ctx = TaskContext(settings=settings, clients=clients, task="lifecycle-check")
    try:
        args = argparse.Namespace(json=True, fix=False, dry_run=False)
        return json.loads(lifecycle_check.run(ctx, args).output)
    finally:
        ctx.close()


def test_provisioned_resources_pass_the_lifecycle_check(
    bare_aws: AwsClients, settings: Settings
) -> None:
    created = provision(settings, bare_aws, now=NOW)

    assert created.buckets == [policy.bucket_name(k, settings) for k in policy.BUCKET_KINDS]
    assert len(created.created) == 3 + 2 + 1
    report = _lifecycle_check(settings, bare_aws)
    assert (report["violations"], report["cannot_check"]) == (0, 0)
    topics = bare_aws("sns").list_topics()["Topics"]
    assert [t["TopicArn"] for t in topics] == [created.topic_arn]


def test_second_provision_changes_nothing_and_keeps_other_rules(
    bare_aws: AwsClients, settings: Settings
) -> None:
    first = provision(settings, bare_aws, now=NOW)
    s3 = bare_aws("s3")
    backups = settings.s3_bucket_backups
    own = {
        "ID": "keep-me",
        "Status": "Enabled",
        "Filter": {"Prefix": "x/"},
        "Expiration": {"Days": 2},
    }
    s3.put_bucket_lifecycle_configuration(
        Bucket=backups,
        LifecycleConfiguration={"Rules": [*policy.current_lifecycle_rules(s3, backups), own]},
    )

    second = provision(settings, bare_aws, now=NOW)

    assert second.created == []
    assert second.topic_arn == first.topic_arn
    ids = sorted(r["ID"] for r in policy.current_lifecycle_rules(s3, backups))
    assert ids == sorted(["keep-me", *policy.LIFECYCLE_RULE_IDS["backups"]])
    account = bare_aws("sts").get_caller_identity()["Account"]
    assert len(bare_aws("budgets").describe_budgets(AccountId=account)["Budgets"]) == 1


def test_local_budget_has_a_plausible_spend_below_the_thresholds(
    bare_aws: AwsClients, settings: Settings
) -> None:
    created = provision(settings, bare_aws, now=NOW)
    local = settings.model_copy(update={"alert_topic_arn": created.topic_arn})
    ctx = TaskContext(settings=local, clients=bare_aws, task="budget-poll")
    try:
        result = poll_budget(ctx, NOW, as_json=True)
    finally:
        ctx.close()

    report = json.loads(result.output)
    actual, forecast = local_month_spend(settings.budget_limit_usd, NOW)
    assert 0 < actual < forecast < 0.8 * settings.budget_limit_usd
    assert report["actual_usd"] == actual
    assert report["forecast_usd"] == forecast
    assert report["thresholds_crossed"] == []


@pytest.mark.slow
def test_server_mode_queues_a_cost_breakdown_for_budget_poll(settings: Settings) -> None:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        local = settings.model_copy(update={"aws_endpoint_url": f"http://{host}:{port}"})
        clients = AwsClients(local)
        provision(local, clients, now=NOW)
        answer = clients("ce").get_cost_and_usage(
            TimePeriod={"Start": "2026-11-01", "End": "2026-11-16"},
            Granularity="MONTHLY",
            Metrics=["UnblendedCost"],
            GroupBy=[{"Type": "DIMENSION", "Key": "SERVICE"}],
        )
        groups = answer["ResultsByTime"][0]["Groups"]
        total = sum(float(g["Metrics"]["UnblendedCost"]["Amount"]) for g in groups)
        assert total == pytest.approx(local_month_spend(settings.budget_limit_usd, NOW)[0], 0.01)
        s3 = boto3.client("s3", endpoint_url=local.aws_endpoint_url, region_name="us-east-1")
        assert {b["Name"] for b in s3.list_buckets()["Buckets"]} == set(
            policy.bucket_name(k, settings) for k in policy.BUCKET_KINDS
        )
    finally:
        server.stop()

"""A schedule delivered twice at the same moment (EventBridge is at-least-once): two
`python -m tasks backup` and two `python -m tasks budget-poll` processes started together.
One backup object (one version), one alert per threshold."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import boto3
import pytest

from opsd.clock import utcnow
from tests.conftest import create_app_database
from tests.faults.fault_proxy import FaultProxy
from tests.faults.figures import record_figure
from tests.frozen_clock import frozen_clock
from tests.task_processes import (
    BUCKET,
    ROOT,
    drill_every_backup,
    moto_endpoint,
    s3_client,
    settings_for,
    task_env,
    tasks_command,
    trials,
)
from tests.tasks.backup_helpers import add_bulk

pytestmark = [pytest.mark.faults, pytest.mark.slow]
ROUNDS = trials(full=10, under_ci=3, variable="DUPLICATE_ROUNDS")


def start_together(env: dict[str, str], *args: str) -> list[subprocess.CompletedProcess[str]]:
    """Two identical task processes started at once; both awaited."""
    children = [
        subprocess.Popen(
            tasks_command(*args),
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    finished = []
    for child in children:
        out, err = child.communicate(timeout=120)
        finished.append(subprocess.CompletedProcess(child.args, child.returncode, out, err))
    return finished


def test_two_backups_started_together_write_one_object(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    # Through the proxy: it makes moto decide conditional completions atomically, as S3 does.
    with moto_endpoint(BUCKET) as endpoint, FaultProxy(endpoint) as proxy:
        s3 = s3_client(endpoint)
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        env = task_env(proxy.url, tmp_path, BACKUP_PART_SIZE_MB="5")
        # Both runs of a delivery read one moment, so they name the same minute's key.
        env = frozen_clock(env, tmp_path / "hooks", utcnow())
        add_bulk(create_app_database(Path(env["DATABASE_PATH"])), 8)
        outcomes = []
        for round_ in range(ROUNDS):
            prefix = f"round-{round_:02d}"
            runs = start_together({**env, "BACKUP_PREFIX": prefix}, "backup")

            assert [r.returncode for r in runs] == [0, 0], [r.stderr for r in runs]
            versions = s3.list_object_versions(Bucket=BUCKET, Prefix=f"{prefix}/")
            assert len(versions.get("Versions", [])) == 1, versions.get("Versions")
            assert not versions.get("DeleteMarkers")
            assert len(drill_every_backup(settings_for(endpoint, prefix))) == 1
            assert s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []
            skipped = sum("already exists" in r.stdout for r in runs)
            assert skipped == 1, [r.stdout[-500:] for r in runs]
            outcomes.append(
                "raced to completion"
                if any(
                    '"event": "snapshot taken"' in r.stdout for r in runs if "already" in r.stdout
                )
                else "second saw the object"
            )
    raced = outcomes.count("raced to completion")
    record_figure(
        request.config,
        "faults",
        f"duplicate backup delivery: {ROUNDS} rounds, {raced} decided by If-None-Match at "
        f"completion, {ROUNDS - raced} by the existence check; objects per round: 1",
    )


def create_budget(endpoint: str, actual: float, forecast: float) -> None:
    sts = boto3.client("sts", endpoint_url=endpoint, region_name="us-east-1")
    budgets = boto3.client("budgets", endpoint_url=endpoint, region_name="us-east-1")
    budgets.create_budget(
        AccountId=sts.get_caller_identity()["Account"],
        Budget={
            "BudgetName": "drawing-analysis-monthly",
            "BudgetLimit": {"Amount": "40", "Unit": "USD"},
            "TimeUnit": "MONTHLY",
            "BudgetType": "COST",
            "CalculatedSpend": {
                "ActualSpend": {"Amount": str(actual), "Unit": "USD"},
                "ForecastedSpend": {"Amount": str(forecast), "Unit": "USD"},
            },
        },
    )


def alert_inbox(endpoint: str) -> tuple[str, Any, str]:
    """An SNS topic with an SQS queue subscribed: (topic ARN, SQS client, queue URL)."""
    sns = boto3.client("sns", endpoint_url=endpoint, region_name="us-east-1")
    sqs = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1")
    topic = sns.create_topic(Name="alerts")["TopicArn"]
    queue = sqs.create_queue(QueueName="alerts")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn["QueueArn"])
    return topic, sqs, queue


def drain(sqs: Any, queue: str) -> list[dict[str, str]]:
    messages = []
    while batch := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages"):
        messages += [json.loads(m["Body"]) for m in batch]
        for message in batch:
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
    return messages


def test_two_budget_polls_started_together_send_each_alert_once(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    with moto_endpoint() as endpoint:
        create_budget(endpoint, actual=42.0, forecast=55.0)  # over both thresholds
        topic, sqs, queue = alert_inbox(endpoint)
        env = task_env(endpoint, tmp_path, ALERT_TOPIC_ARN=topic, BUDGET_LIMIT_USD="40")
        Path(env["OPS_STATE_PATH"]).parent.mkdir(parents=True, exist_ok=True)

        runs = start_together(env, "budget-poll")
        again = start_together(env, "budget-poll")
        alerts = drain(sqs, queue)

    assert [r.returncode for r in runs + again] == [3, 3, 3, 3], [r.stderr for r in runs]
    subjects = sorted(alert["Subject"] for alert in alerts)
    assert len(subjects) == 2, subjects  # actual over 100 %, forecast over 100 %
    assert len({s.split(":")[1].split()[0] for s in subjects}) == 2
    record_figure(
        request.config,
        "faults",
        f"duplicate budget-poll delivery: 4 runs (2 at once, twice), {len(subjects)} alerts "
        "for 2 thresholds crossed",
    )

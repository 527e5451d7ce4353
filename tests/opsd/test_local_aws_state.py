from __future__ import annotations

import pickle
from pathlib import Path

import boto3
import pytest
from moto import mock_aws
from moto.core.base_backend import BackendDict

from opsd.local_aws_state import StateKeeper, load

BUCKET = "drawing-analysis-backups-local"


def fill_services() -> str:
    """A bucket with an object and its metadata, a log group, a topic, a budget, a metric."""
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="backup-1.db", Body=b"SQLite", Metadata={"sha256": "ab"})
    boto3.client("logs", region_name="us-east-1").create_log_group(logGroupName="/app")
    topic = boto3.client("sns", region_name="us-east-1").create_topic(Name="alerts")["TopicArn"]
    account = boto3.client("sts", region_name="us-east-1").get_caller_identity()["Account"]
    boto3.client("budgets", region_name="us-east-1").create_budget(
        AccountId=account,
        Budget={
            "BudgetName": "monthly",
            "BudgetLimit": {"Amount": "40", "Unit": "USD"},
            "TimeUnit": "MONTHLY",
            "BudgetType": "COST",
        },
    )
    boto3.client("cloudwatch", region_name="us-east-1").put_metric_data(
        Namespace="DrawingAnalysis", MetricData=[{"MetricName": "BackupAgeHours", "Value": 1.5}]
    )
    return str(topic)


def test_a_saved_state_comes_back_after_a_reset(tmp_path: Path) -> None:
    path = tmp_path / "state.pickle"
    with mock_aws():
        topic = fill_services()
        StateKeeper(path).save()
        BackendDict.reset()
        assert boto3.client("s3", region_name="us-east-1").list_buckets()["Buckets"] == []

        assert load(path) is True
        s3 = boto3.client("s3", region_name="us-east-1")
        stored = s3.get_object(Bucket=BUCKET, Key="backup-1.db")
        assert stored["Body"].read() == b"SQLite"
        assert stored["Metadata"] == {"sha256": "ab"}
        logs = boto3.client("logs", region_name="us-east-1").describe_log_groups()
        assert [g["logGroupName"] for g in logs["logGroups"]] == ["/app"]
        topics = boto3.client("sns", region_name="us-east-1").list_topics()["Topics"]
        assert [t["TopicArn"] for t in topics] == [topic]
        account = boto3.client("sts", region_name="us-east-1").get_caller_identity()["Account"]
        budgets = boto3.client("budgets", region_name="us-east-1").describe_budgets(
            AccountId=account
        )
        assert [b["BudgetName"] for b in budgets["Budgets"]] == ["monthly"]
        metrics = boto3.client("cloudwatch", region_name="us-east-1").list_metrics(
            Namespace="DrawingAnalysis"
        )
        assert [m["MetricName"] for m in metrics["Metrics"]] == ["BackupAgeHours"]


def test_a_save_replaces_the_file_whole_and_leaves_no_partial_file(tmp_path: Path) -> None:
    path = tmp_path / "local-aws" / "state.pickle"
    path.parent.mkdir()
    path.write_bytes(b"the previous state")
    with mock_aws():
        fill_services()
        StateKeeper(path).save()
    assert isinstance(pickle.loads(path.read_bytes()), dict)
    assert sorted(p.name for p in path.parent.iterdir()) == ["state.pickle"]


@pytest.mark.parametrize(
    "content",
    [b"", b"\x80\x05garbage", pickle.dumps(["not", "a", "snapshot"])],
    ids=["empty", "truncated", "not-a-snapshot"],
)
def test_an_unreadable_state_is_set_aside_with_one_line_and_the_endpoint_starts_empty(
    tmp_path: Path, content: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "state.pickle"
    path.write_bytes(content)
    with mock_aws():
        assert load(path) is False
        assert boto3.client("s3", region_name="us-east-1").list_buckets()["Buckets"] == []
    assert not path.exists()
    [aside] = tmp_path.glob("state.pickle.unreadable-*")
    assert aside.read_bytes() == content
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    assert "cannot be loaded" in lines[0]
    assert aside.name in lines[0]


def test_no_saved_state_is_an_empty_start(tmp_path: Path) -> None:
    assert load(tmp_path / "state.pickle") is False
    assert not list(tmp_path.glob("state.pickle*"))


@pytest.mark.slow
def test_the_endpoint_sets_a_damaged_state_aside_starts_empty_and_saves_when_stopped(
    tmp_path: Path,
) -> None:
    from structlog.testing import capture_logs

    from opsd.local_aws import EmbeddedAws
    from tests.task_processes import free_port

    folder = tmp_path / "local-aws"
    folder.mkdir()
    (folder / "state.pickle").write_bytes(b"\x80\x05half a pickle")
    embedded = EmbeddedAws(free_port(), folder)
    with capture_logs() as logs:
        url = embedded.start()
    try:
        assert [e["event"] for e in logs if e["log_level"] == "warning"] == [
            "local aws state unreadable, set aside; starting empty"
        ]
        s3 = boto3.client(
            "s3", endpoint_url=url, region_name="us-east-1", verify=str(embedded.cert_path)
        )
        assert s3.list_buckets()["Buckets"] == []
        s3.create_bucket(Bucket=BUCKET)
    finally:
        embedded.stop()
    assert len(list(folder.glob("state.pickle.unreadable-*"))) == 1
    with mock_aws():
        assert load(folder / "state.pickle") is True
        names = [
            b["Name"] for b in boto3.client("s3", region_name="us-east-1").list_buckets()["Buckets"]
        ]
        assert names == [BUCKET]

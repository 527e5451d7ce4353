from __future__ import annotations

import argparse
import hashlib
import json
import socket
import sqlite3
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from botocore.exceptions import ClientError
from botocore.serialize import create_serializer

from opsd.aws import AwsClients
from opsd.metric_catalog import METRICS
from opsd.metrics import MAX_PAYLOAD_BYTES, Datum, MetricsPublisher, PayloadSizer
from opsd.metrics import split_datum as _split
from opsd.results import Status, TaskError
from opsd.runner import TaskContext, execute
from opsd.settings import Settings
from tasks.backups.store import key_time
from tasks.metrics.cursor import IN_FLIGHT_KEY, WATERMARK_KEY
from tasks.publish_metrics import publish_metrics
from tasks.registry import TASKS
from tests.conftest import add_analysis, create_app_database
from tests.tasks.backup_helpers import plant_backup

NOW = datetime(2026, 11, 24, 6, 5, 30, tzinfo=UTC)


def _stamp(moment: datetime) -> str:
    return moment.isoformat()


def add_analyses(path: Path, rows: list[tuple[datetime, int, float]]) -> None:
    conn = sqlite3.connect(path)
    for at, anomaly, ms in rows:
        add_analysis(conn, _stamp(at), is_anomaly=anomaly, processing_time_ms=ms)
    conn.commit()
    conn.close()


@pytest.fixture
def app_database(settings: Settings) -> Path:
    return create_app_database(settings.database_path, analyses=0)


@pytest.fixture
def publish(aws: AwsClients, settings: Settings) -> Iterator[Any]:
    contexts: list[TaskContext] = []

    def run(now: datetime = NOW, **kwargs: Any) -> Any:
        ctx = TaskContext(settings=settings, clients=aws, task="publish-metrics")
        contexts.append(ctx)
        return publish_metrics(ctx, now, **kwargs)

    yield run
    for ctx in contexts:
        ctx.close()


def _points(aws: AwsClients, settings: Settings, name: str, statistic: str) -> dict[str, float]:
    answer = aws("cloudwatch").get_metric_statistics(
        Namespace=settings.metrics_namespace,
        MetricName=name,
        Dimensions=[{"Name": "Environment", "Value": settings.environment}],
        StartTime=NOW - timedelta(hours=1),
        EndTime=NOW + timedelta(hours=1),
        Period=60,
        Statistics=[statistic],
    )
    return {
        p["Timestamp"].strftime("%H:%M"): p[statistic]
        for p in sorted(answer["Datapoints"], key=lambda p: p["Timestamp"])
    }


def test_minutes_are_published_with_their_own_timestamps(
    aws, settings, app_database, publish
) -> None:
    at_6_01 = datetime(2026, 11, 24, 6, 1, 10, tzinfo=UTC)
    at_6_03 = datetime(2026, 11, 24, 6, 3, 59, 900000, tzinfo=UTC)
    add_analyses(
        app_database,
        [(at_6_01, 0, 100.4), (at_6_01, 1, 99.6), (at_6_01, 0, 250.0), (at_6_03, 1, 40.0)],
    )

    result = publish()

    assert result.status is Status.OK
    assert _points(aws, settings, "AnalysisCount", "Sum") == {"06:01": 3.0, "06:03": 1.0}
    assert _points(aws, settings, "AnomalyCount", "Sum") == {"06:01": 1.0, "06:03": 1.0}
    assert _points(aws, settings, "ProcessingTime", "SampleCount") == {"06:01": 3.0, "06:03": 1.0}
    assert _points(aws, settings, "ProcessingTime", "Maximum") == {"06:01": 250.0, "06:03": 40.0}
    assert _points(aws, settings, "DatabaseSizeBytes", "Maximum") == {
        "06:05": float(app_database.stat().st_size)
    }


def test_a_rerun_publishes_nothing_twice_and_a_later_run_only_new_minutes(
    aws, settings, app_database, publish
) -> None:
    add_analyses(app_database, [(NOW - timedelta(minutes=3), 0, 50.0)])
    first = publish()
    again = publish()
    add_analyses(app_database, [(NOW + timedelta(minutes=1), 0, 60.0)])
    later = publish(NOW + timedelta(minutes=5))

    assert first.details["analyses"] == 1
    assert again.details["analyses"] == 0
    assert later.details["analyses"] == 1
    assert sum(_points(aws, settings, "AnalysisCount", "Sum").values()) == 2.0


def test_the_minute_still_running_and_the_last_one_wait(
    aws, settings, app_database, publish
) -> None:
    this_minute = NOW.replace(second=1)
    last_minute = this_minute - timedelta(minutes=1)
    add_analyses(app_database, [(this_minute, 0, 10.0), (last_minute, 0, 20.0)])

    early = publish()
    add_analyses(app_database, [(this_minute.replace(second=59), 0, 11.0)])
    late = publish(NOW + timedelta(minutes=2))

    assert early.details["analyses"] == 0
    assert late.details["analyses"] == 3
    assert _points(aws, settings, "AnalysisCount", "Sum") == {"06:04": 1.0, "06:05": 2.0}


def test_backup_age_comes_from_the_newest_backup_key(aws, settings, app_database, publish) -> None:
    s3 = aws("s3")
    for key in ("backup-2026-10-31-18-00.db", "backup-2026-11-24-00-00.db"):
        plant_backup(s3, settings.s3_bucket_backups, key, key_time(key))  # type: ignore[arg-type]
    s3.put_object(Bucket=settings.s3_bucket_backups, Key="notes.txt", Body=b"x")

    result = publish()

    assert "newest backup backup-2026-11-24-00-00.db, 6.1 h old" in result.message
    # The point carries the run's minute and the age at that minute: 06:05 − 6 h 5 min = 00:00.
    assert _points(aws, settings, "BackupAgeSeconds", "Maximum") == {"06:05": 6 * 3600 + 300.0}


def test_no_backup_publishes_no_backup_age_and_says_so(
    aws, settings, app_database, publish
) -> None:
    result = publish()

    assert "no backup found: BackupAgeSeconds not published" in result.message
    assert _points(aws, settings, "BackupAgeSeconds", "Maximum") == {}


def test_a_run_that_finds_another_running_publishes_nothing(
    aws, settings, app_database, publish, make_ctx
) -> None:
    add_analyses(app_database, [(NOW - timedelta(minutes=3), 0, 50.0)])
    other = make_ctx("publish-metrics")
    assert other.state.take_lease("publish-metrics", "other-run", NOW).taken

    result = publish()

    assert result.status is Status.SKIPPED
    assert _points(aws, settings, "AnalysisCount", "Sum") == {}
    later = publish(NOW + timedelta(minutes=3))  # its heartbeat stopped: the lease lapsed
    assert later.details["analyses"] == 1


def test_a_failed_call_keeps_the_watermark_so_the_next_run_sends_the_minutes(
    aws, settings, app_database, publish
) -> None:
    add_analyses(app_database, [(NOW - timedelta(minutes=2), 0, 50.0)])
    refused = ClientError(
        {"Error": {"Code": "Throttling", "Message": "slow down"}}, "PutMetricData"
    )

    with (
        mock.patch.object(aws("cloudwatch"), "put_metric_data", side_effect=refused),
        pytest.raises(TaskError, match="put metric data: Throttling"),
    ):
        publish()
    retried = publish()

    assert retried.details["analyses"] == 1
    assert _points(aws, settings, "AnalysisCount", "Sum") == {"06:03": 1.0}


def test_a_watermark_older_than_two_weeks_skips_what_cloudwatch_would_refuse(
    aws, settings, app_database, publish, make_ctx
) -> None:
    make_ctx("publish-metrics").state.set(WATERMARK_KEY, "2026-10-01T00:00")
    add_analyses(
        app_database,
        [(datetime(2026, 10, 2, tzinfo=UTC), 0, 5.0), (NOW - timedelta(days=3), 0, 6.0)],
    )

    result = publish()

    assert result.details["analyses"] == 1
    assert "skipped (CloudWatch keeps two weeks)" in result.message


def test_the_app_database_is_only_read(settings, app_database, publish) -> None:
    add_analyses(app_database, [(NOW - timedelta(minutes=2), 0, 50.0)])
    before = hashlib.sha256(app_database.read_bytes()).hexdigest()

    publish()

    assert hashlib.sha256(app_database.read_bytes()).hexdigest() == before
    assert sorted(p.name for p in app_database.parent.iterdir()) == ["app.db", "ops-state.db"]


def test_missing_app_database_is_a_one_line_error(aws, settings, publish) -> None:
    with pytest.raises(TaskError, match=r"^read app database: .*app.db: database file not found"):
        publish()


class _SizingCloudWatch:
    """Records each call's real request-body size, serialized as botocore would send it."""

    def __init__(self, model: Any) -> None:
        self._operation = model.operation_model("PutMetricData")
        self._serializer = create_serializer(model.protocol)
        self.sizes: list[int] = []
        self.items: list[int] = []

    def put_metric_data(self, **params: Any) -> None:
        body = self._serializer.serialize_to_request(params, self._operation)["body"]
        self.sizes.append(len(body))
        self.items.append(len(params["MetricData"]))


def test_batches_are_filled_to_the_limits_and_never_over(aws, settings) -> None:
    model = aws("cloudwatch").meta.service_model
    recorder = _SizingCloudWatch(model)
    stamp = NOW.replace(second=0)
    data = [
        Datum("ProcessingTime", values=[float(v) for v in range(1 + i % 300)], timestamp=stamp)
        for i in range(1, 3000)
    ]
    data += [Datum("AnalysisCount", 1, timestamp=stamp)] * 2500

    calls = MetricsPublisher(settings, recorder).publish(data)

    sizer = PayloadSizer(model, settings.metrics_namespace)
    assert calls == len(recorder.sizes)
    assert max(recorder.sizes) <= MAX_PAYLOAD_BYTES
    # Every call but the last is full: by payload (within one item) or by item count.
    for size, items in zip(recorder.sizes[:-1], recorder.items[:-1], strict=True):
        assert items == 1000 or size > MAX_PAYLOAD_BYTES - 3000
    assert sizer.base > 0


def test_repeated_values_are_merged_before_splitting() -> None:
    parts = list(_split(Datum("ProcessingTime", values=[5.0, 5.0, 7.0], counts=[1.0, 2.0, 1.0])))
    assert [(list(p.values), list(p.counts)) for p in parts] == [([5.0, 7.0], [3.0, 1.0])]


def _prod_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"environment": "prod"})


def test_a_first_run_starts_at_the_first_analysis_not_two_weeks_back(
    aws, settings, app_database, publish
) -> None:
    empty = publish()
    add_analyses(app_database, [(NOW - timedelta(hours=3), 0, 5.0)])
    make_state = TaskContext(settings=settings, clients=aws, task="publish-metrics")
    make_state.state.db.execute("DELETE FROM kv")
    make_state.close()

    first = publish(as_json=True)

    assert "none (up to 2026-11-24T06:04 already sent)" in empty.message
    report = json.loads(first.output)
    assert report["from_minute"] == "2026-11-24T03:05"
    assert report["analyses"] == 1
    assert "CloudWatch holds no AnalysisCount of the last two weeks" in first.message


def test_a_garbled_watermark_is_recovered_from_cloudwatch(
    aws, settings, app_database, publish, make_ctx
) -> None:
    add_analyses(app_database, [(NOW - timedelta(minutes=30), 1, 5.0)])
    publish()
    make_ctx("publish-metrics").state.set(WATERMARK_KEY, {"minute": "banana"})

    again = publish()

    assert again.details["analyses"] == 0
    assert "unreadable" in again.message
    assert "resumed after 2026-11-24T05:35" in again.message
    assert _points(aws, settings, "AnalysisCount", "Sum") == {"05:35": 1.0}


def test_with_no_watermark_and_cloudwatch_unreadable_nothing_is_published(
    aws, settings, app_database, publish
) -> None:
    add_analyses(app_database, [(NOW - timedelta(minutes=30), 1, 5.0)])
    denied = ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "GetMetricData")

    with (
        mock.patch.object(aws("cloudwatch"), "get_metric_data", side_effect=denied),
        pytest.raises(TaskError, match=r"^read back what CloudWatch holds: AccessDenied.*nothing"),
    ):
        publish()

    assert _points(aws, settings, "AnalysisCount", "Sum") == {}


def _in_flight(ctx: TaskContext, sent_at: datetime) -> None:
    """What a run killed during its call over [05:10, 05:12) leaves behind."""
    ctx.state.set(WATERMARK_KEY, "2026-11-24T05:10")
    ctx.state.set(
        IN_FLIGHT_KEY,
        {
            "run_id": "killed",
            "from": {"minute": "2026-11-24T05:10", "item": 0},
            "through": {"minute": "2026-11-24T05:11", "item": 3},
            "witness": {
                "minute": "2026-11-24T05:10",
                "item": 0,
                "metric": "AnalysisCount",
                "samples": 1.0,
            },
            "sent_at": sent_at.isoformat(),
        },
    )


def test_a_killed_runs_call_that_reached_cloudwatch_is_not_sent_again(
    aws, settings, app_database, publish, make_ctx
) -> None:
    rows = [(datetime(2026, 11, 24, 5, m, 10, tzinfo=UTC), 0, 5.0) for m in (10, 11, 30)]
    add_analyses(app_database, rows)
    publish(NOW - timedelta(minutes=52))  # sends 05:10 and 05:11
    _in_flight(make_ctx("publish-metrics"), NOW - timedelta(minutes=50))

    result = publish()

    assert "reached CloudWatch: not sent again" in result.message
    assert _points(aws, settings, "AnalysisCount", "Sum") == {
        "05:10": 1.0,
        "05:11": 1.0,
        "05:30": 1.0,
    }


def test_outside_local_mode_an_unseen_call_waits_for_cloudwatch_then_is_sent(
    aws, settings, app_database, make_ctx
) -> None:
    prod = _prod_settings(settings)
    rows = [(datetime(2026, 11, 24, 5, m, 10, tzinfo=UTC), 0, 5.0) for m in (10, 11)]
    add_analyses(app_database, rows)
    _in_flight(make_ctx("publish-metrics"), NOW - timedelta(minutes=2))

    def run(now: datetime) -> Any:
        ctx = TaskContext(settings=prod, clients=aws, task="publish-metrics")
        try:
            return publish_metrics(ctx, now)
        finally:
            ctx.close()

    waiting = run(NOW)
    sent = run(NOW + timedelta(minutes=10))

    assert waiting.status is Status.SKIPPED
    assert "CloudWatch does not show it yet: deciding after 2026-11-24T06:13" in waiting.message
    assert "died before its call" in sent.message and sent.details["analyses"] == 2


def test_a_lease_left_by_a_dead_process_is_taken_over_and_the_run_recorded_failed(
    aws, settings, app_database, publish, make_ctx
) -> None:
    add_analyses(app_database, [(NOW - timedelta(minutes=3), 0, 50.0)])
    gone = subprocess.Popen(["true"])
    gone.wait()
    state = make_ctx("publish-metrics").state
    holder = {"host": socket.gethostname(), "pid": gone.pid, "started_at": NOW.isoformat()}
    assert state.take_lease("publish-metrics", "dead-run", NOW, holder).taken

    result = publish(NOW + timedelta(seconds=20))

    assert result.status is Status.OK and result.details["analyses"] == 1
    assert f"run dead-run (pid {gone.pid}" in result.message and "died without" in result.message
    assert state.db["task_runs"].get("dead-run")["status"] == "failed"
    failed = aws("cloudwatch").get_metric_statistics(
        Namespace=settings.metrics_namespace,
        MetricName="TaskFailed",
        Dimensions=[
            {"Name": "Environment", "Value": settings.environment},
            {"Name": "Task", "Value": "publish-metrics"},
        ],
        StartTime=datetime.now(UTC) - timedelta(hours=1),
        EndTime=datetime.now(UTC) + timedelta(hours=1),
        Period=3600,
        Statistics=["Sum"],
    )["Datapoints"]
    assert sum(p["Sum"] for p in failed) == 1.0


def test_a_lease_held_elsewhere_blocks_only_until_its_heartbeat_lapses(
    aws, settings, app_database, publish, make_ctx
) -> None:
    add_analyses(app_database, [(NOW - timedelta(minutes=3), 0, 50.0)])
    state = make_ctx("publish-metrics").state
    holder = {"host": "another-task", "pid": 1, "started_at": NOW.isoformat()}
    assert state.take_lease("publish-metrics", "elsewhere", NOW, holder).taken

    held = publish(NOW + timedelta(minutes=1))
    lapsed = publish(NOW + timedelta(minutes=2, seconds=1))

    assert held.status is Status.SKIPPED
    assert "run elsewhere (pid 1 on another-task" in held.message
    assert lapsed.status is Status.OK and lapsed.details["analyses"] == 1


def test_each_metric_has_the_dimension_set_the_catalog_intends(aws, settings, app_database) -> None:
    """`aws cloudwatch list-metrics` against the local endpoint repeats the metrics with two
    dimensions once per point: moto compares each dimension with every other one
    (moto/cloudwatch/models.py: are_dimensions_same), so Environment+Task never equals itself.
    Real CloudWatch lists each metric once; what matters is the set, checked here."""
    add_analyses(app_database, [(datetime.now(UTC) - timedelta(minutes=5), 1, 50.0)])
    for _ in range(2):
        ctx = TaskContext(settings=settings, clients=aws, task="publish-metrics")
        try:
            execute(TASKS["publish-metrics"], ctx, argparse.Namespace(json=False))
        finally:
            ctx.close()

    listed = aws("cloudwatch").list_metrics(Namespace=settings.metrics_namespace)["Metrics"]
    distinct = {
        (m["MetricName"], tuple(sorted((d["Name"], d["Value"]) for d in m["Dimensions"])))
        for m in listed
    }
    environment = ("Environment", settings.environment)
    expected = {
        (name, (environment,))
        for name in ("AnalysisCount", "AnomalyCount", "ProcessingTime", "DatabaseSizeBytes")
    } | {
        (name, (environment, ("Task", "publish-metrics")))
        for name in ("TaskSucceeded", "TaskFailed", "TaskDurationSeconds")
    }
    assert distinct == expected
    for name, dimensions in distinct:
        assert tuple(n for n, _ in dimensions) == tuple(sorted(METRICS[name].dimensions))


def test_an_ops_state_that_is_not_a_database_is_moved_aside_and_the_run_says_so(
    aws, settings, app_database, publish
) -> None:
    add_analyses(app_database, [(NOW - timedelta(minutes=30), 1, 5.0)])
    publish()
    settings.ops_state_path.write_bytes(b"not a database at all" * 50)

    again = publish()

    assert again.details["analyses"] == 0
    assert "the ops state was not a database: moved aside to ops-state.db.unreadable-" in (
        again.message
    )
    assert "resumed after 2026-11-24T05:35" in again.message
    (aside,) = settings.ops_state_path.parent.glob("ops-state.db.unreadable-*")
    assert aside.read_bytes().startswith(b"not a database")
    assert _points(aws, settings, "AnalysisCount", "Sum") == {"05:35": 1.0}


def test_an_unreadable_cloudwatch_does_not_stop_publishing_when_the_cursor_is_known(
    aws, settings, app_database, publish
) -> None:
    add_analyses(app_database, [(NOW - timedelta(minutes=30), 1, 5.0)])
    publish(NOW - timedelta(minutes=10))
    add_analyses(app_database, [(NOW - timedelta(minutes=3), 0, 5.0)])
    denied = ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "GetMetricData")

    with mock.patch.object(aws("cloudwatch"), "get_metric_data", side_effect=denied):
        later = publish()

    assert later.details["analyses"] == 1
    assert "check that CloudWatch still holds 2026-11-24T05:35: AccessDenied" in later.message
    assert _points(aws, settings, "AnalysisCount", "Sum") == {"05:35": 1.0, "06:02": 1.0}

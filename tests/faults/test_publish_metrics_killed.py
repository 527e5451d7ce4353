"""publish-metrics killed at every call boundary, its state lost or garbled, its CloudWatch
restarted empty: after the next normal run CloudWatch holds each analysis exactly once.

Every trial runs `python -m tasks publish-metrics` as its own process against moto's server,
with its own metrics namespace and ops state, over the same app database of ~700 minutes
(several PutMetricData calls). The kill comes from the process itself, through botocore's events
on its CloudWatch client (tests/faults/killing_tasks.py): right before the Nth PutMetricData
request is sent, or right after its answer arrived and before the task could record it.
"""

from __future__ import annotations

import json
import random
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.conftest import add_analysis, create_app_database
from tests.faults.figures import record_figure
from tests.faults.test_duplicate_delivery import start_together
from tests.task_processes import BUCKET, ROOT, moto_endpoint, run_tasks_cli, task_env

pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.timeout(900)]
NAMESPACE = "DrawingAnalysis"
KILLER = Path(__file__).with_name("killing_tasks.py")
MINUTES = 700


def fill_analyses(path: Path, now: datetime) -> dict[str, int]:
    """Two analyses a minute over the last MINUTES minutes (all of them closed): the counts."""
    create_app_database(path, analyses=0)
    rng = random.Random(19)
    first = now.replace(second=0, microsecond=0) - timedelta(minutes=MINUTES + 5)
    rows = []
    for minute in range(MINUTES):
        for second in (7, 41):
            at = first + timedelta(minutes=minute, seconds=second)
            rows.append((at.isoformat(), int(rng.random() < 0.2), rng.uniform(20, 400)))
    conn = sqlite3.connect(path)
    for created_at, is_anomaly, ms in rows:
        add_analysis(conn, created_at, is_anomaly=is_anomaly, processing_time_ms=ms)
    conn.commit()
    conn.close()
    return {
        "AnalysisCount": len(rows),
        "AnomalyCount": sum(r[1] for r in rows),
        "ProcessingTime": len(rows),
    }


def cloudwatch_totals(endpoint: str, namespace: str, now: datetime) -> dict[str, int]:
    """Sum of AnalysisCount and AnomalyCount, SampleCount of ProcessingTime, over two days."""
    cloudwatch = boto3.client("cloudwatch", endpoint_url=endpoint, region_name="us-east-1")
    totals = {}
    for metric, stat in (
        ("AnalysisCount", "Sum"),
        ("AnomalyCount", "Sum"),
        ("ProcessingTime", "SampleCount"),
    ):
        answer = cloudwatch.get_metric_statistics(
            Namespace=namespace,
            MetricName=metric,
            Dimensions=[{"Name": "Environment", "Value": "local"}],
            StartTime=now - timedelta(days=2),
            EndTime=now + timedelta(hours=1),
            Period=86400,
            Statistics=[stat],
        )
        totals[metric] = round(sum(p[stat] for p in answer["Datapoints"]))
    return totals


def killed_run(
    env: dict[str, str], when: str, nth: int | str, *args: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(KILLER), when, str(nth), "publish-metrics", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def call_windows(path: Path) -> tuple[list[float], list[float]]:
    """Per data call, in ms: request sent → answer back, and answer back → cursor committed:
    the instants at which a kill leaves a call that CloudWatch may hold but the state does not
    record (settled by reading CloudWatch back)."""
    events = [json.loads(line) for line in path.read_text().splitlines()]
    in_flight, unrecorded = [], []
    sent = answered = None
    for event in events:
        if event["moment"] == "before":
            sent, answered = event["at"], None
        elif event["moment"] == "after" and sent is not None:
            answered = event["at"]
        elif event["moment"] == "committed" and answered is not None and sent is not None:
            in_flight.append(1000 * (answered - sent))
            unrecorded.append(1000 * (event["at"] - answered))
            sent = answered = None
    return in_flight, unrecorded


def report_of(run: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert run.returncode == 0, run.stderr[-2000:]
    return json.loads(run.stdout)


def run_records(state: Path) -> list[tuple[str, str]]:
    conn = sqlite3.connect(state)
    try:
        return conn.execute("SELECT status, message FROM task_runs ORDER BY started_at").fetchall()
    finally:
        conn.close()


@pytest.fixture
def analyses(tmp_path: Path) -> tuple[dict[str, int], datetime]:
    now = datetime.now(UTC)
    return fill_analyses(tmp_path / "data" / "app.db", now), now


@contextmanager
def trial(tmp_path: Path, name: str) -> Iterator[tuple[str, dict[str, str]]]:
    """A fresh CloudWatch (moto's GetMetricData ignores the namespace when dimensions are
    given, so trials cannot share one) and the trial's own ops state."""
    with moto_endpoint(BUCKET) as endpoint:
        env = task_env(endpoint, tmp_path, OPS_STATE_PATH=str(tmp_path / f"state-{name}.db"))
        yield endpoint, env


def test_a_run_killed_at_every_call_boundary_sends_no_minute_twice(
    analyses: tuple[dict[str, int], datetime], tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    counts, now = analyses
    times = tmp_path / "call-times.jsonl"
    with trial(tmp_path, "calibration") as (endpoint, env):
        calibration = report_of(killed_run(env, "measure", str(times), "--json"))
        assert cloudwatch_totals(endpoint, NAMESPACE, now) == counts
    data_calls = calibration["put_metric_data_calls"]
    assert data_calls >= 3, calibration  # the boundaries between calls are what is tested

    trials = 0
    for when in ("before", "after"):
        for nth in range(1, data_calls + 2):  # every data call, then the runner's own call
            name = f"{when}-{nth}"
            with trial(tmp_path, name) as (endpoint, env):
                killed = killed_run(env, when, nth)
                assert killed.returncode == -9, (name, killed.returncode, killed.stderr[-2000:])

                follow_up = report_of(run_tasks_cli(env, "publish-metrics", "--json"))

                assert cloudwatch_totals(endpoint, NAMESPACE, now) == counts, name
            records = run_records(Path(env["OPS_STATE_PATH"]))
            if nth <= data_calls:  # killed holding the lease: the next run says so, not skipped
                assert any("died without finishing" in n for n in follow_up["notes"]), name
                assert [status for status, _ in records] == ["failed", "ok"], (name, records)
            trials += 1
    in_flight, unrecorded = call_windows(times)
    assert len(in_flight) == data_calls, in_flight
    record_figure(
        request.config,
        "faults",
        f"publish-metrics call windows ({len(in_flight)} data calls, moto on loopback): request "
        f"in flight {min(in_flight):.0f}–{max(in_flight):.0f} ms, answer to cursor committed "
        f"{min(unrecorded):.1f}–{max(unrecorded):.1f} ms",
    )
    record_figure(
        request.config,
        "faults",
        f"kill -9 of publish-metrics at every call boundary: {trials} kills ({data_calls} data "
        f"calls + the runner's, before each request and after each answer); AnalysisCount, "
        f"AnomalyCount and ProcessingTime samples in CloudWatch equal to the database "
        f"({counts['AnalysisCount']} analyses) after every follow-up run: {trials} of {trials}",
    )


@pytest.mark.parametrize("damage", ["removed", "garbage"])
def test_state_removed_or_garbled_between_runs_sends_nothing_twice(
    analyses: tuple[dict[str, int], datetime], tmp_path: Path, damage: str
) -> None:
    counts, now = analyses
    with trial(tmp_path, damage) as (endpoint, env):
        first = report_of(run_tasks_cli(env, "publish-metrics", "--json"))
        assert first["analyses"] == counts["AnalysisCount"]
        state = Path(env["OPS_STATE_PATH"])
        if damage == "removed":
            state.unlink()
        else:
            state.write_bytes(b"\x00garbage, not a database" * 100)

        again = report_of(run_tasks_cli(env, "publish-metrics", "--json"))

        assert again["analyses"] == 0, again
        notes = " ".join(again["notes"])
        assert "newest minute whose AnalysisCount CloudWatch holds" in notes, notes
        if damage == "garbage":
            assert "moved aside" in notes, notes
        assert cloudwatch_totals(endpoint, NAMESPACE, now) == counts


def test_a_restarted_endpoint_that_lost_its_data_gets_every_minute_again(
    analyses: tuple[dict[str, int], datetime], tmp_path: Path
) -> None:
    counts, now = analyses
    with moto_endpoint(BUCKET) as endpoint:
        env = task_env(endpoint, tmp_path)
        first = report_of(run_tasks_cli(env, "publish-metrics", "--json"))
        assert first["analyses"] == counts["AnalysisCount"]
    with moto_endpoint(BUCKET) as fresh:  # a new, empty CloudWatch; the ops state is kept
        env = task_env(fresh, tmp_path)
        again = report_of(run_tasks_cli(env, "publish-metrics", "--json"))
        assert any("no longer holds minute" in n for n in again["notes"]), again["notes"]
        assert cloudwatch_totals(fresh, NAMESPACE, now) == counts
        once_more = report_of(run_tasks_cli(env, "publish-metrics", "--json"))
        assert once_more["analyses"] == 0
        assert cloudwatch_totals(fresh, NAMESPACE, now) == counts


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (("after", 2), ("before-read", 1)),  # killed again before asking for the witness
        (("after", 2), ("after-read", 1)),  # ... and after the answer, before acting on it
        (("before", 2), ("after-read", 1)),  # a call that never left, witness read, killed
        (("state-removed", 0), ("after-read", 2)),  # killed midway through finding the newest
    ],
)
def test_a_run_killed_while_reading_cloudwatch_back_leaves_it_to_the_next(
    analyses: tuple[dict[str, int], datetime],
    tmp_path: Path,
    first: tuple[str, int],
    second: tuple[str, int],
) -> None:
    counts, now = analyses
    with trial(tmp_path, "twice") as (endpoint, env):
        if first[0] == "state-removed":
            report_of(run_tasks_cli(env, "publish-metrics", "--json"))
            Path(env["OPS_STATE_PATH"]).unlink()
        else:
            assert killed_run(env, *first).returncode == -9
        assert killed_run(env, *second).returncode == -9

        follow_up = report_of(run_tasks_cli(env, "publish-metrics", "--json"))

        assert cloudwatch_totals(endpoint, NAMESPACE, now) == counts, follow_up["notes"]
        assert any("died without finishing" in n for n in follow_up["notes"])


def test_two_runs_started_together_send_each_minute_once(
    analyses: tuple[dict[str, int], datetime], tmp_path: Path
) -> None:
    counts, now = analyses
    with trial(tmp_path, "together") as (endpoint, env):
        runs = start_together(env, "publish-metrics", "--json")

        assert [run.returncode for run in runs] == [0, 0], [run.stderr[-500:] for run in runs]
        assert cloudwatch_totals(endpoint, NAMESPACE, now) == counts
        published = [json.loads(run.stdout)["analyses"] for run in runs if run.stdout.strip()]
        assert sum(published) == counts["AnalysisCount"]

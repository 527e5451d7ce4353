import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from opsd.aws import AwsClients
from opsd.cli import main as opsd_main
from opsd.daemon import Daemon, daemon_info, status_rows
from opsd.schedule import TaskSpec
from opsd.settings import Settings
from tests.opsd import sample_tasks

REGISTRY = {
    "sample": TaskSpec("sample", "tests.opsd.sample_tasks", "rate(5 minutes)", "sample"),
    "nightly": TaskSpec("nightly", "tests.opsd.sample_tasks", "cron(0 3 * * ? *)", "nightly"),
    "manual": TaskSpec("manual", "tests.opsd.sample_tasks", None, "on demand"),
}


def wait_until(condition: Callable[[], object], what: str, timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {timeout_s} s"
        time.sleep(0.01)


@pytest.fixture
def daemon(settings: Settings, aws: AwsClients):  # type: ignore[no-untyped-def]
    sample_tasks.release.clear()
    sample_tasks.calls.clear()
    sample_tasks.timeline.clear()
    sample_tasks.pause_s.clear()
    made = Daemon(settings, REGISTRY, aws)
    yield made
    sample_tasks.release.set()
    made.shutdown(grace_s=5)


def test_every_scheduled_task_gets_one_job(daemon: Daemon) -> None:
    daemon.start()
    next_runs = daemon.next_runs()
    assert set(next_runs) == {"sample", "nightly"}
    assert next_runs["nightly"].hour == 3 and next_runs["nightly"].minute == 0
    assert daemon.scheduler.get_job("sample").max_instances == 1
    assert daemon.scheduler.get_job("sample").coalesce is True


def test_initial_runs_happen_in_order_at_start(daemon: Daemon, settings: Settings) -> None:
    def recorded() -> dict[str, dict[str, object]]:
        return {row["task"]: row for row in status_rows(settings, REGISTRY)}

    sample_tasks.pause_s["nightly"] = 0.3
    daemon.start(initial_runs=["nightly", "sample"])  # not the registry's order
    wait_until(lambda: recorded()["sample"]["status"], "the second initial run recorded")
    assert sample_tasks.timeline == [  # in the order given, one after the other
        "nightly started",
        "nightly finished",
        "sample started",
        "sample finished",
    ]
    rows = recorded()
    assert rows["sample"]["status"] == "ok" and rows["nightly"]["status"] == "ok"
    assert rows["manual"]["last_run"] is None and rows["manual"]["next_run"] is None


def test_a_second_delivery_while_running_is_skipped(daemon: Daemon) -> None:
    first = threading.Thread(target=daemon.run_task, args=("sample", ["--behave", "slow"]))
    first.start()
    wait_until(lambda: sample_tasks.calls, "the run started")
    assert daemon.run_task("sample") is None
    sample_tasks.release.set()
    first.join(5)
    assert sample_tasks.calls == ["slow"]


def test_shutdown_stops_a_cooperative_task_within_the_grace(daemon: Daemon) -> None:
    daemon.start()
    worker = threading.Thread(target=daemon.run_task, args=("sample", ["--behave", "slow"]))
    worker.start()
    wait_until(lambda: sample_tasks.calls, "the run started")
    began = time.monotonic()
    assert daemon.shutdown(grace_s=10) is True
    assert time.monotonic() - began < 5
    assert daemon.run_task("sample") is None  # no new run after shutdown


def test_shutdown_reports_a_task_that_outlives_the_grace(daemon: Daemon) -> None:
    worker = threading.Thread(target=daemon.run_task, args=("sample", ["--behave", "stubborn"]))
    worker.start()
    wait_until(lambda: sample_tasks.calls, "the run started")
    assert daemon.shutdown(grace_s=0.3) is False
    worker.join(10)


def test_status_knows_the_running_daemon(daemon: Daemon, settings: Settings) -> None:
    daemon.start()
    info = daemon_info(settings)
    assert info is not None and info["alive"] is True


def test_next_run_of_status_follows_the_schedule(settings: Settings) -> None:
    now = datetime(2026, 11, 24, 12, 1, tzinfo=UTC)
    rows = {row["task"]: row for row in status_rows(settings, REGISTRY, now=now)}
    assert rows["nightly"]["next_run"] == "2026-11-25T03:00:00+00:00"


def test_status_shows_the_running_daemons_plan(daemon: Daemon, settings: Settings) -> None:
    daemon.start()
    planned = daemon.next_runs()["sample"]
    rows = {row["task"]: row for row in status_rows(settings, REGISTRY)}
    assert rows["sample"]["next_run"] == planned.isoformat()


def test_opsd_status_lists_every_task(capsys: pytest.CaptureFixture[str]) -> None:
    assert opsd_main(["status"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("daemon: never started")
    for name in (
        "backup",
        "verify-backup",
        "restore",
        "lifecycle-check",
        "budget-poll",
        "publish-metrics",
    ):
        assert f"\n{name} " in out

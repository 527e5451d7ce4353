from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from opsd.results import Status, TaskError
from opsd.settings import Settings
from tasks.service_control import EcsService, service_stopped
from tests.tasks.backup_helpers import run_task


class FakeEcs:
    """An ECS service whose tasks take a few polls to stop and to start."""

    def __init__(self, desired: int = 2, polls_to_settle: int = 3) -> None:
        self.desired = desired
        self.running = desired
        self.polls_to_settle = polls_to_settle
        self._polls = 0
        self.calls: list[tuple[str, Any]] = []

    def describe_services(self, cluster: str, services: list[str]) -> dict[str, Any]:
        self._polls += 1
        if self.running != self.desired and self._polls >= self.polls_to_settle:
            self.running += 1 if self.running < self.desired else -1
            self._polls = 0
        return {
            "services": [
                {
                    "serviceName": services[0],
                    "status": "ACTIVE",
                    "desiredCount": self.desired,
                    "runningCount": self.running,
                    "deployments": [{"status": "PRIMARY"}],
                }
            ]
        }

    def list_tasks(self, **_: Any) -> dict[str, Any]:
        return {"taskArns": [f"arn:task/{i}" for i in range(self.running)]}

    def update_service(self, cluster: str, service: str, desiredCount: int) -> dict[str, Any]:
        self.calls.append(("update_service", desiredCount))
        self.desired = desiredCount
        return {}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def _service(ecs: Any, clock: Clock, timeout_s: float = 600) -> EcsService:
    return EcsService(
        ecs,
        "cluster",
        "app",
        timeout_s=timeout_s,
        poll_s=5,
        sleep=clock.sleep,
        clock=lambda: clock.now,
    )


def test_service_is_stopped_inside_and_brought_back_after() -> None:
    ecs, clock = FakeEcs(desired=2), Clock()
    with service_stopped(_service(ecs, clock)) as previous:
        assert previous == 2
        assert ecs.running == 0 and ecs.list_tasks()["taskArns"] == []
    assert ecs.calls == [("update_service", 0), ("update_service", 2)]
    assert ecs.running == 2
    assert clock.now > 0


def test_service_is_brought_back_when_the_swap_fails() -> None:
    ecs, clock = FakeEcs(desired=1), Clock()
    with pytest.raises(TaskError, match="rename failed"), service_stopped(_service(ecs, clock)):
        raise TaskError("restore x: rename failed")
    assert ecs.calls[-1] == ("update_service", 1)
    assert ecs.running == 1


def test_tasks_that_never_stop_time_out_and_the_service_is_scaled_back() -> None:
    ecs, clock = FakeEcs(desired=1, polls_to_settle=10**9), Clock()
    with (
        pytest.raises(TaskError, match="all tasks stopped not reached in 60 s"),
        service_stopped(_service(ecs, clock, timeout_s=60)),
    ):
        pytest.fail("the body must not run while tasks are still running")
    assert ecs.calls == [("update_service", 0), ("update_service", 1)]


def test_missing_service_is_a_one_line_error() -> None:
    class NoService(FakeEcs):
        def describe_services(self, cluster: str, services: list[str]) -> dict[str, Any]:
            return {"services": [], "failures": [{"reason": "MISSING"}]}

    with pytest.raises(TaskError, match="describe service app: not found in cluster"):
        _service(NoService(), Clock()).describe()


def test_restore_with_stop_service_against_moto_ecs(
    make_ctx: Any, app_db: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run_task(make_ctx("backup")).status is Status.OK
    ecs = make_ctx("restore").clients("ecs")
    ecs.create_cluster(clusterName="drawings")
    ecs.register_task_definition(
        family="app", containerDefinitions=[{"name": "app", "image": "app", "memory": 512}]
    )
    ecs.create_service(cluster="drawings", serviceName="app", taskDefinition="app", desiredCount=1)
    settings.ecs_cluster, settings.ecs_app_service = "drawings", "app"
    monkeypatch.setattr("tasks.service_control.time.sleep", lambda _: None)

    result = run_task(make_ctx("restore"), stop_service=True)

    assert result.status is Status.OK, result.message
    service = ecs.describe_services(cluster="drawings", services=["app"])["services"][0]
    assert service["desiredCount"] == 1
    assert "previous database kept" in result.message


def test_stop_service_needs_the_ecs_settings(make_ctx: Any, app_db: Path) -> None:
    result = run_task(make_ctx("restore"), stop_service=True)
    assert result.status is Status.USAGE and result.exit_code == 2
    assert result.message == "--stop-service: set ECS_CLUSTER and ECS_APP_SERVICE"

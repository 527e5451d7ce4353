from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from opsd.results import Status, TaskError
from opsd.settings import Settings
from tasks.backups.service_control import EcsService, service_stopped
from tests.tasks.backup_helpers import run_task

CLUSTER, SERVICE = "cluster", "app"
WHERE = {"cluster": CLUSTER, "services": [SERVICE]}


def described(desired: int, running: int, deployments: int = 1) -> dict[str, Any]:
    service = {
        "serviceName": SERVICE,
        "status": "ACTIVE",
        "desiredCount": desired,
        "runningCount": running,
        "deployments": [{"status": "PRIMARY"}] * deployments,
    }
    return {"services": [service], "failures": []}


def scaled(stub: Stubber, count: int) -> None:
    stub.add_response(
        "update_service", {}, {"cluster": CLUSTER, "service": SERVICE, "desiredCount": count}
    )


def no_task_left(stub: Stubber) -> None:
    listing = {"cluster": CLUSTER, "serviceName": SERVICE, "desiredStatus": "RUNNING"}
    stub.add_response("list_tasks", {"taskArns": []}, listing)


@pytest.fixture
def ecs() -> Iterator[tuple[Any, Stubber]]:
    """A real botocore ECS client (so its waiters run) answering a script of responses, in
    order and with the parameters given; an unscripted call fails the test."""
    client = boto3.client("ecs", region_name="us-east-1")
    with Stubber(client) as stub:
        yield client, stub


def _service(client: Any, timeout_s: float = 2, poll_s: float = 0.01) -> EcsService:
    return EcsService(client, CLUSTER, SERVICE, timeout_s=timeout_s, poll_s=poll_s)


def test_service_is_stopped_inside_and_brought_back_after(ecs: tuple[Any, Stubber]) -> None:
    client, stub = ecs
    stub.add_response("describe_services", described(2, 2), WHERE)
    scaled(stub, 0)
    stub.add_response("describe_services", described(0, 1), WHERE)  # still stopping
    stub.add_response("describe_services", described(0, 0), WHERE)
    no_task_left(stub)
    with service_stopped(_service(client)) as previous:
        assert previous == 2
        stub.assert_no_pending_responses()  # every wait for the stop came before the body
        scaled(stub, 2)
        stub.add_response("describe_services", described(2, 1), WHERE)
        stub.add_response("describe_services", described(2, 2, deployments=2), WHERE)
        stub.add_response("describe_services", described(2, 2), WHERE)
    stub.assert_no_pending_responses()  # back only once steady: both tasks, one deployment


def test_tasks_ecs_still_runs_are_waited_for_until_stopped(ecs: tuple[Any, Stubber]) -> None:
    client, stub = ecs
    stub.add_response("describe_services", described(1, 1), WHERE)
    scaled(stub, 0)
    stub.add_response("describe_services", described(0, 0), WHERE)
    stub.add_response("list_tasks", {"taskArns": ["arn:task/1"]})
    for status in ("DEACTIVATING", "STOPPED"):
        task = {"taskArn": "arn:task/1", "lastStatus": status}
        stub.add_response(
            "describe_tasks", {"tasks": [task]}, {"cluster": CLUSTER, "tasks": ["arn:task/1"]}
        )
    with service_stopped(_service(client)):
        stub.assert_no_pending_responses()
        scaled(stub, 1)
        stub.add_response("describe_services", described(1, 1), WHERE)


def test_service_is_brought_back_when_the_swap_fails(ecs: tuple[Any, Stubber]) -> None:
    client, stub = ecs
    stub.add_response("describe_services", described(1, 1), WHERE)
    scaled(stub, 0)
    stub.add_response("describe_services", described(0, 0), WHERE)
    no_task_left(stub)
    scaled(stub, 1)
    stub.add_response("describe_services", described(1, 1), WHERE)
    with pytest.raises(TaskError, match="rename failed"), service_stopped(_service(client)):
        raise TaskError("restore x: rename failed")
    stub.assert_no_pending_responses()


def test_tasks_that_never_stop_time_out_and_the_service_is_scaled_back(
    ecs: tuple[Any, Stubber],
) -> None:
    client, stub = ecs
    stub.add_response("describe_services", described(1, 1), WHERE)
    scaled(stub, 0)
    for _ in range(1 + 8):  # the first look, then one every 1/8 s for 1 s
        stub.add_response("describe_services", described(0, 1), WHERE)
    scaled(stub, 1)
    stub.add_response("describe_services", described(1, 1), WHERE)
    with (
        pytest.raises(TaskError, match="^service app: all tasks stopped not reached in 1 s$"),
        service_stopped(_service(client, timeout_s=1, poll_s=0.125)),
    ):
        pytest.fail("the body must not run while tasks are still running")
    stub.assert_no_pending_responses()


def test_missing_service_is_a_one_line_error(ecs: tuple[Any, Stubber]) -> None:
    client, stub = ecs
    stub.add_response("describe_services", {"services": [], "failures": [{"reason": "MISSING"}]})
    with pytest.raises(TaskError, match="^describe service app: not found in cluster$"):
        _service(client).describe()


def test_a_service_gone_during_the_wait_is_a_one_line_error(ecs: tuple[Any, Stubber]) -> None:
    client, stub = ecs
    gone = {"services": [], "failures": [{"arn": SERVICE, "reason": "MISSING"}]}
    stub.add_response("describe_services", gone, WHERE)  # the waiter's look
    stub.add_response("describe_services", gone, WHERE)  # the look that names the reason
    with pytest.raises(TaskError, match="^describe service app: not found in cluster$"):
        _service(client).wait_steady(1)


def test_an_aws_error_during_the_wait_is_a_one_line_error(ecs: tuple[Any, Stubber]) -> None:
    client, stub = ecs
    for _ in range(2):
        stub.add_client_error("describe_services", "AccessDeniedException", "not allowed")
    with pytest.raises(TaskError, match="^describe service app: AccessDeniedException"):
        _service(client).wait_stopped()


def test_restore_with_stop_service_against_moto_ecs(
    make_ctx: Any, app_db: Path, settings: Settings
) -> None:
    assert run_task(make_ctx("backup")).status is Status.OK
    ecs = make_ctx("restore").clients("ecs")
    ecs.create_cluster(clusterName="drawings")
    ecs.register_task_definition(
        family="app", containerDefinitions=[{"name": "app", "image": "app", "memory": 512}]
    )
    ecs.create_service(cluster="drawings", serviceName="app", taskDefinition="app", desiredCount=1)
    settings.ecs_cluster, settings.ecs_app_service = "drawings", "app"
    calls: list[tuple[str, object]] = []
    ecs.meta.events.register(
        "before-parameter-build.ecs.*",
        lambda model, params, **_: calls.append((model.name, params.get("desiredCount"))),
    )

    result = run_task(make_ctx("restore"), stop_service=True)

    assert result.status is Status.OK, result.message
    assert calls == [
        ("DescribeServices", None),  # the count to come back to
        ("UpdateService", 0),
        ("DescribeServices", None),  # stopped: the waiter's first look
        ("ListTasks", None),
        ("UpdateService", 1),
        ("DescribeServices", None),  # steady again
    ]
    service = ecs.describe_services(cluster="drawings", services=["app"])["services"][0]
    assert service["desiredCount"] == 1
    assert "previous database kept" in result.message


def test_stop_service_needs_the_ecs_settings(make_ctx: Any, app_db: Path) -> None:
    result = run_task(make_ctx("restore"), stop_service=True)
    assert result.status is Status.USAGE and result.exit_code == 2
    assert result.message == "--stop-service: set ECS_CLUSTER and ECS_APP_SERVICE"

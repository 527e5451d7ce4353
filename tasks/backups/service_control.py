"""Stopping the app's ECS service around an in-place restore, and bringing it back."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import structlog
from botocore.exceptions import WaiterError

from opsd.aws import describe_aws_error
from opsd.results import TaskError

log = structlog.get_logger()


class EcsService:
    def __init__(
        self, ecs: Any, cluster: str, service: str, *, timeout_s: float = 600, poll_s: float = 5
    ) -> None:
        self.ecs, self.cluster, self.service = ecs, cluster, service
        self.timeout_s, self.poll_s = timeout_s, poll_s

    def _call(self, action: str, operation: str, **params: Any) -> Any:
        try:
            return getattr(self.ecs, operation)(cluster=self.cluster, **params)
        except Exception as exc:
            raise TaskError(describe_aws_error(action, exc)) from exc

    def describe(self) -> dict[str, Any]:
        action = f"describe service {self.service}"
        found = self._call(action, "describe_services", services=[self.service])
        services = [s for s in found.get("services", ()) if s.get("status") != "INACTIVE"]
        if not services:
            raise TaskError(f"{action}: not found in {self.cluster}")
        return services[0]  # type: ignore[no-any-return]

    def scale(self, count: int) -> None:
        action = f"scale service {self.service} to {count}"
        self._call(action, "update_service", service=self.service, desiredCount=count)
        log.info("service scaled", service=self.service, desired=count)

    def wait_stopped(self) -> None:
        """Until the service runs no task (scaled to 0) and none is left that ECS would run."""
        self._wait("services_stable", "all tasks stopped", services=[self.service])
        action, service = f"list tasks of {self.service}", self.service
        listed = self._call(action, "list_tasks", serviceName=service, desiredStatus="RUNNING")
        if running := listed.get("taskArns"):
            self._wait("tasks_stopped", "all tasks stopped", tasks=running)

    def wait_steady(self, count: int) -> None:
        """Until the service runs its desired count in one deployment."""
        self._wait("services_stable", f"steady state at {count}", services=[self.service])

    def _wait(self, waiter: str, what: str, **target: Any) -> None:
        attempts = math.ceil(self.timeout_s / self.poll_s) + 1  # the first look is at once
        config = {"Delay": self.poll_s, "MaxAttempts": attempts}
        try:
            self.ecs.get_waiter(waiter).wait(cluster=self.cluster, WaiterConfig=config, **target)
        except WaiterError as exc:
            reason = str(exc.kwargs.get("reason", ""))
            if not reason.startswith("Max attempts exceeded"):
                self.describe()  # the one-line reason: the service is gone, or AWS refused
                raise TaskError(f"service {self.service}: {what}: {reason}") from None
            raise TaskError(
                f"service {self.service}: {what} not reached in {self.timeout_s:.0f} s"
            ) from None
        except Exception as exc:
            raise TaskError(describe_aws_error(f"describe service {self.service}", exc)) from exc


@contextmanager
def service_stopped(service: EcsService) -> Iterator[int]:
    """Scale to 0 and wait until no task runs; on the way out, scale back and wait for steady
    state, whatever happened inside. Yields the desired count it will restore."""
    previous = int(service.describe().get("desiredCount", 0))
    service.scale(0)
    failed = False
    try:
        service.wait_stopped()
        yield previous
    except BaseException:
        failed = True
        raise
    finally:
        try:
            service.scale(previous)
            service.wait_steady(previous)
        except TaskError as exc:
            if not failed:
                raise TaskError(f"restored, but {exc}") from None
            log.error("service not brought back", service=service.service, error=str(exc))

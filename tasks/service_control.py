"""Stopping the app's ECS service around an in-place restore, and bringing it back."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import structlog

from opsd.aws import describe_aws_error
from opsd.results import TaskError

log = structlog.get_logger()


class EcsService:
    def __init__(
        self,
        ecs: Any,
        cluster: str,
        service: str,
        *,
        timeout_s: float = 600,
        poll_s: float = 5,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ecs, self.cluster, self.service = ecs, cluster, service
        self.timeout_s, self.poll_s = timeout_s, poll_s
        self._sleep, self._clock = sleep, clock

    def describe(self) -> dict[str, Any]:
        try:
            found = self.ecs.describe_services(cluster=self.cluster, services=[self.service])
        except Exception as exc:
            raise TaskError(describe_aws_error(f"describe service {self.service}", exc)) from exc
        services = [s for s in found.get("services", ()) if s.get("status") != "INACTIVE"]
        if not services:
            raise TaskError(f"describe service {self.service}: not found in {self.cluster}")
        return services[0]  # type: ignore[no-any-return]

    def scale(self, count: int) -> None:
        try:
            self.ecs.update_service(cluster=self.cluster, service=self.service, desiredCount=count)
        except Exception as exc:
            action = f"scale service {self.service} to {count}"
            raise TaskError(describe_aws_error(action, exc)) from exc
        log.info("service scaled", service=self.service, desired=count)

    def running_tasks(self) -> list[str]:
        try:
            listed = self.ecs.list_tasks(
                cluster=self.cluster, serviceName=self.service, desiredStatus="RUNNING"
            )
        except Exception as exc:
            raise TaskError(describe_aws_error(f"list tasks of {self.service}", exc)) from exc
        return list(listed.get("taskArns", ()))

    def stopped(self) -> bool:
        return self.describe().get("runningCount", 0) == 0 and not self.running_tasks()

    def steady(self, count: int) -> bool:
        service = self.describe()
        deployments = service.get("deployments", ())
        return service.get("runningCount") == count and len(deployments) <= 1

    def wait_until(self, condition: Callable[[], bool], what: str) -> None:
        deadline = self._clock() + self.timeout_s
        while not condition():
            if self._clock() >= deadline:
                raise TaskError(
                    f"service {self.service}: {what} not reached in {self.timeout_s:.0f} s"
                )
            self._sleep(self.poll_s)


@contextmanager
def service_stopped(service: EcsService) -> Iterator[int]:
    """Scale to 0 and wait until no task runs; on the way out, scale back and wait for steady
    state, whatever happened inside. Yields the desired count it will restore."""
    previous = int(service.describe().get("desiredCount", 0))
    service.scale(0)
    failed = False
    try:
        service.wait_until(service.stopped, "all tasks stopped")
        yield previous
    except BaseException:
        failed = True
        raise
    finally:
        try:
            service.scale(previous)
            service.wait_until(lambda: service.steady(previous), f"steady state at {previous}")
        except TaskError as exc:
            if not failed:
                raise TaskError(f"restored, but {exc}") from None
            log.error("service not brought back", service=service.service, error=str(exc))

"""`python tests/faults/killing_tasks.py WHEN N TASK [ARGS]`: `python -m tasks TASK`, killed with
SIGKILL by itself at the Nth PutMetricData call, right before its request is made
(WHEN=before) or right after its answer arrived and before the task sees it (WHEN=after);
`before-read` and `after-read` do the same at the Nth GetMetricData call (reading back).
WHEN=measure kills nothing and writes, per call, the moments its request went out, its answer
came back and publish-metrics committed its cursor, as JSON lines to the file named N.

The hooks are botocore's own events on the CloudWatch client, so the task's code is the code
that runs in production; only the moment of death is chosen.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from typing import Any

from opsd import aws


def _measure(path: str) -> None:
    from tasks.metrics import cursor as publish_cursor

    move = publish_cursor.PublishState.move

    def timed_move(self: Any, *args: Any, **kwargs: Any) -> None:
        move(self, *args, **kwargs)
        _note(path, "committed")

    publish_cursor.PublishState.move = timed_move  # type: ignore[method-assign]


def _note(path: str, moment: str) -> None:
    with open(path, "a") as log:
        log.write(json.dumps({"moment": moment, "at": time.monotonic()}) + "\n")


WHENS = ("before", "after", "before-read", "after-read", "measure")


def _arm(when: str, nth: str) -> None:
    made = aws.make_client
    calls = {"PutMetricData": 0, "GetMetricData": 0}
    if when == "measure":
        _measure(nth)

    def die(moment: str, operation: str) -> None:
        if when == "measure":
            if operation == "PutMetricData":
                _note(nth, moment)
            return
        suffix = "-read" if operation == "GetMetricData" else ""
        if when == moment + suffix and calls[operation] == int(nth):
            os.kill(os.getpid(), signal.SIGKILL)

    def before_send(model: Any, **_: Any) -> None:
        calls[model.name] += 1
        die("before", model.name)

    def after_call(model: Any, **_: Any) -> None:
        die("after", model.name)

    def make_client(settings: Any, service: str, *rest: Any) -> Any:
        client = made(settings, service, *rest)
        if service == "cloudwatch":
            for operation in calls:
                events = client.meta.events
                events.register(f"before-call.cloudwatch.{operation}", before_send)
                events.register(f"after-call.cloudwatch.{operation}", after_call)
        return client

    aws.make_client = make_client  # type: ignore[assignment]


if __name__ == "__main__":
    moment, count, *task = sys.argv[1:]
    if moment not in WHENS or not task:
        sys.exit("usage: killing_tasks.py before|after[-read] N TASK [ARGS] | measure FILE TASK")
    _arm(moment, count)
    from opsd.runner import main
    from tasks.registry import TASKS

    sys.exit(main(task, TASKS))

"""`python tests/faults/killing_tasks.py WHEN N TASK [ARGS]`: `python -m tasks TASK`, killed with
SIGKILL by itself at the Nth PutMetricData call, right before its request is sent
(WHEN=before) or right after its answer arrived and before the task sees it (WHEN=after).

The hooks are botocore's own events on the CloudWatch client, so the task's code is the code
that runs in production; only the moment of death is chosen.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

from opsd import aws


def _arm(when: str, nth: int) -> None:
    made = aws.make_client
    calls = [0]

    def die(moment: str) -> None:
        if moment == when and calls[0] == nth:
            os.kill(os.getpid(), signal.SIGKILL)

    def before_send(**_: Any) -> None:
        calls[0] += 1
        die("before")

    def after_call(**_: Any) -> None:
        die("after")

    def make_client(settings: Any, service: str, session: Any = None) -> Any:
        client = made(settings, service, session)
        if service == "cloudwatch":
            client.meta.events.register("before-send.cloudwatch.PutMetricData", before_send)
            client.meta.events.register("after-call.cloudwatch.PutMetricData", after_call)
        return client

    aws.make_client = make_client  # type: ignore[assignment]


if __name__ == "__main__":
    moment, count, *task = sys.argv[1:]
    if moment not in ("before", "after") or not task:
        sys.exit("usage: killing_tasks.py before|after N TASK [ARGS]")
    _arm(moment, int(count))
    from opsd.runner import main
    from tasks.registry import TASKS

    sys.exit(main(task, TASKS))

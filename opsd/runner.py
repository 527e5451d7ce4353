"""The task runner: the one place a task run is timed, caught, logged, recorded and published.

The daemon and `python -m tasks NAME` (ECS) go through `execute`, so a run looks the same
wherever it happens: one `task finished` line, TaskSucceeded/TaskFailed, an exit code.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from types import FrameType
from typing import Any

import structlog

from opsd.aws import AwsClients
from opsd.clock import utcnow
from opsd.local_aws import attach_running_endpoint
from opsd.logging import configure_logging
from opsd.metrics import Datum, MetricsPublisher
from opsd.results import EXIT_CODES, EXIT_USAGE, Status, TaskError, TaskResult, UsageError
from opsd.schedule import TaskSpec
from opsd.settings import ConfigError, Settings, load_settings
from opsd.state import OpsState

# Fields of the `task finished` line that a task's details do not override.
_LOGGED_ANYWAY = {"task", "run_id", "status", "duration_s", "message", "event"}


class Terminated(BaseException):
    """SIGTERM arrived: unwind (cleaning up on the way) and report the run as failed."""


def _ask_on_terminal(prompt: str) -> bool:
    try:
        answer = input(f"{prompt} [y/N] ")
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")


@dataclass
class TaskContext:
    """What a task gets besides its arguments: settings, clients, state, log, clock, stop."""

    settings: Settings
    clients: AwsClients
    task: str
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    stop: threading.Event = field(default_factory=threading.Event)
    interactive: bool = False
    confirm: Callable[[str], bool] = _ask_on_terminal
    clock: Callable[[], datetime] = utcnow

    @cached_property
    def log(self) -> Any:
        return structlog.get_logger().bind(task=self.task, run_id=self.run_id)

    @cached_property
    def state(self) -> OpsState:
        return OpsState.for_settings(self.settings)

    @cached_property
    def metrics(self) -> MetricsPublisher:
        return MetricsPublisher(self.settings, self.clients("cloudwatch"))

    def check_stop(self) -> None:
        if self.stop.is_set():
            raise TaskError("stopped: shutdown requested")

    def close(self) -> None:
        if "state" in self.__dict__:
            self.state.close()


def execute(spec: TaskSpec, ctx: TaskContext, args: argparse.Namespace) -> TaskResult:
    """Run one task to completion and report it; never raises except KeyboardInterrupt."""
    started_at = ctx.clock()
    began = time.monotonic()
    ctx.log.info("task started")
    try:
        result = spec.load().run(ctx, args)
    except (UsageError, ConfigError) as exc:
        result = TaskResult(spec.name, Status.USAGE, str(exc))
    except TaskError as exc:
        result = TaskResult(spec.name, exc.status, str(exc))
    except Terminated:
        result = TaskResult(spec.name, Status.FAILED, "interrupted by SIGTERM")
    except Exception as exc:
        ctx.log.exception("task crashed")
        result = TaskResult(spec.name, Status.FAILED, f"{type(exc).__name__}: {exc}")
    result.task = spec.name
    result.duration_s = time.monotonic() - began
    try:
        ctx.state.record_run(ctx.run_id, started_at, result)
    except Exception as exc:
        ctx.log.warning("run not recorded", path=str(ctx.settings.ops_state_path), error=str(exc))
    try:
        ctx.metrics.publish(
            [
                Datum("TaskSucceeded", 0 if result.failed else 1, task=result.task),
                Datum("TaskFailed", 1 if result.failed else 0, task=result.task),
                Datum("TaskDurationSeconds", result.duration_s, task=result.task),
            ]
        )
    except Exception as exc:
        ctx.log.warning("task metrics not published", error=str(exc))
    log = ctx.log.error if result.failed else ctx.log.info
    log(
        "task finished",
        status=str(result.status),
        duration_s=round(result.duration_s, 3),
        message=result.message,
        **{k: v for k, v in result.details.items() if k not in _LOGGED_ANYWAY},
    )
    return result


def overview(registry: Mapping[str, TaskSpec]) -> str:
    width = max(len(name) for name in registry)
    lines = [
        "usage: python -m tasks TASK [options]   (python -m tasks TASK --help for its options)",
        "",
        "Run one operations task to completion.",
        "",
        "tasks:",
        *(
            f"  {s.name:<{width}}  {s.summary} [{s.schedule or 'on demand'}]"
            for s in registry.values()
        ),
        "",
        "exit codes: 0 done or skipped, 1 failed, 2 usage or configuration error,",
        "            3 ran fine but found violations",
    ]
    return "\n".join(lines)


def parse_command_line(
    argv: Sequence[str], registry: Mapping[str, TaskSpec]
) -> tuple[TaskSpec, argparse.Namespace]:
    """Loads only the named task's module, so a run imports what it uses."""
    if not argv or argv[0] in ("-h", "--help"):
        print(overview(registry))
        raise SystemExit(0 if argv else EXIT_USAGE)
    name, rest = argv[0], argv[1:]
    if name not in registry:
        print(
            f"python -m tasks: unknown task {name!r} (choose from {', '.join(registry)})",
            file=sys.stderr,
        )
        raise SystemExit(EXIT_USAGE)
    spec = registry[name]
    return spec, spec.parser().parse_args(rest)


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated()


def main(argv: Sequence[str] | None, registry: Mapping[str, TaskSpec]) -> int:
    """`python -m tasks NAME [options]`: parse, configure, run once, map status to exit code."""
    spec, args = parse_command_line(list(sys.argv[1:] if argv is None else argv), registry)
    try:
        settings = attach_running_endpoint(load_settings())
        # With --json, stdout carries only the document; the log lines go to stderr.
        configure_logging(
            settings.log_level,
            settings.log_format,
            settings.secret_values(),
            to_stderr=getattr(args, "json", False),
        )
        signal.signal(signal.SIGTERM, _raise_terminated)
        interactive = sys.stdin.isatty() and sys.stdout.isatty()
        ctx = TaskContext(settings, AwsClients(settings), spec.name, interactive=interactive)
        ctx.state  # noqa: B018 (opened before the run: a bad OPS_STATE_PATH is a setting's error)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        result = execute(spec, ctx, args)
    except Terminated:  # the signal came while the finished run was being recorded
        print(f"{spec.name} failed: interrupted by SIGTERM", file=sys.stderr)
        return EXIT_CODES[Status.FAILED]
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the run is over: only reporting is left
        ctx.close()
    if result.output:
        print(result.output, flush=True)
    if result.status is Status.USAGE:
        print(f"{spec.name}: {result.message}", file=sys.stderr)
    elif result.status in (Status.FAILED, Status.VIOLATION):
        print(f"{spec.name} {result.status}: {result.message}", file=sys.stderr)
    return result.exit_code

"""Task modules for runner and daemon tests: each behaves one known way."""

from __future__ import annotations

import argparse
import threading
import time

from opsd.results import Status, TaskError, TaskResult, UsageError
from opsd.runner import TaskContext

DESCRIPTION = "A task for tests."
calls: list[str] = []
timeline: list[str] = []  # "<task> started" / "<task> finished", in the order they happened
pause_s: dict[str, float] = {}  # how long a run of a task takes: overlapping runs would show
release = threading.Event()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--behave",
        choices=["ok", "skip", "violation", "fail", "crash", "usage", "slow", "stubborn"],
        default="ok",
    )
    parser.add_argument("--json", action="store_true")


def run(ctx: TaskContext, args: argparse.Namespace) -> TaskResult:
    timeline.append(f"{ctx.task} started")
    time.sleep(pause_s.get(ctx.task, 0.0))
    calls.append(args.behave)
    if args.behave == "fail":
        raise TaskError("upload backup-2026-11-24-06-00.db: AccessDenied")
    if args.behave == "crash":
        raise RuntimeError("boom")
    if args.behave == "usage":
        raise UsageError("--at: not a timestamp")
    if args.behave == "slow":
        ctx.check_stop()
        while not release.wait(0.01):
            ctx.check_stop()
    if args.behave == "stubborn":  # ignores check_stop: only SIGTERM (or the test) ends it
        release.wait(60)
    status = {"skip": Status.SKIPPED, "violation": Status.VIOLATION}.get(args.behave, Status.OK)
    timeline.append(f"{ctx.task} finished")
    return TaskResult(
        ctx.task,
        status,
        f"behaved {args.behave}",
        {"bytes": 42},
        output='{"done": true}' if args.json else None,
    )

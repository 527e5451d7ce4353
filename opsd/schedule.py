"""Task specs (schedule, start order, options); EventBridge expressions as APScheduler triggers."""

from __future__ import annotations

import argparse
import importlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from opsd.results import EXIT_USAGE

if TYPE_CHECKING:
    from opsd.results import TaskResult
    from opsd.runner import TaskContext

_CRON = re.compile(r"^cron\((.+)\)$")
_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")


class TaskModule(Protocol):
    DESCRIPTION: str

    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, ctx: TaskContext, args: argparse.Namespace) -> TaskResult: ...


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a usage error in one line (exit 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see --help)\n")


@dataclass(frozen=True)
class TaskSpec:
    """One task: its command name, module, schedule (None: on demand only), summary, and its
    place among the runs at daemon start (None: not run at start)."""

    name: str
    module: str
    schedule: str | None
    summary: str
    start_order: int | None = None

    def load(self) -> TaskModule:
        return importlib.import_module(self.module)  # type: ignore[return-value]

    def parser(self) -> argparse.ArgumentParser:
        """The task's command line, the same for `python -m tasks` and the daemon."""
        module = self.load()
        parser = OneLineParser(
            prog=f"python -m tasks {self.name}",
            description=f"{module.DESCRIPTION} Schedule: {self.schedule or 'on demand'}.",
        )
        module.add_arguments(parser)
        return parser

    def trigger(self) -> BaseTrigger | None:
        return None if self.schedule is None else trigger_for(self.schedule)


def start_runs(registry: Mapping[str, TaskSpec]) -> list[str]:
    """The tasks the daemon runs once at start, in their order."""
    at_start = [spec for spec in registry.values() if spec.start_order is not None]
    return [spec.name for spec in sorted(at_start, key=lambda spec: spec.start_order or 0)]


def trigger_for(expression: str) -> BaseTrigger:
    """APScheduler trigger for an EventBridge `cron(...)` or `rate(...)` expression (UTC)."""
    if match := _RATE.match(expression):
        amount, unit = int(match[1]), match[2].rstrip("s") + "s"
        return IntervalTrigger(**{unit: amount}, timezone="UTC")
    if match := _CRON.match(expression):
        fields = match[1].split()
        if len(fields) != 6:
            raise ValueError(f"{expression}: EventBridge cron needs 6 fields")
        minute, hour, day, month, weekday, year = fields
        if weekday not in ("?", "*"):
            raise ValueError(f"{expression}: day-of-week schedules are not supported")
        day = "*" if day == "?" else day
        return CronTrigger(
            minute=minute, hour=hour, day=day, month=month, year=year, timezone="UTC"
        )
    raise ValueError(f"{expression}: not an EventBridge cron(...) or rate(...) expression")

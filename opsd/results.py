"""The shape every task run reports (ARCHITECTURE §8)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class Status(enum.StrEnum):
    OK = "ok"
    SKIPPED = "skipped"
    VIOLATION = "violation"
    FAILED = "failed"
    USAGE = "usage"  # the command line or configuration is wrong: nothing was done


EXIT_USAGE = 2
EXIT_CODES = {Status.FAILED: 1, Status.USAGE: EXIT_USAGE, Status.VIOLATION: 3}  # else 0


@dataclass
class TaskResult:
    """What one run did. `output` is shown to the person or script that ran the task."""

    task: str
    status: Status
    message: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    duration_s: float = 0.0
    output: str | None = None

    @property
    def exit_code(self) -> int:
        return EXIT_CODES.get(self.status, 0)

    @property
    def failed(self) -> bool:
        return self.status in (Status.FAILED, Status.USAGE)


class TaskError(Exception):
    """An expected failure; its message is the one-line reason shown to the user."""

    status = Status.FAILED


class UsageError(TaskError):
    """The command line or configuration is wrong (status usage, exit 2)."""

"""structlog set-up: JSON lines off a terminal, readable console on one, secrets redacted."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable
from typing import Any, TextIO

import structlog

_SECRET_KEY = re.compile(r"(password|secret|token|authorization|cookie|session_key)", re.I)
REDACTED = "[redacted]"


class SecretRedactor:
    """Drops known secret values and secret-looking fields from every event."""

    def __init__(self) -> None:
        self._values: set[str] = set()

    def register(self, values: Iterable[str]) -> None:
        self._values.update(v for v in values if v and len(v) >= 4)

    def _clean(self, value: Any) -> Any:
        if isinstance(value, str):
            for secret in self._values:
                value = value.replace(secret, REDACTED)
            return value
        if isinstance(value, dict):
            return {
                k: REDACTED if _SECRET_KEY.search(str(k)) else self._clean(v)
                for k, v in value.items()
            }
        if isinstance(value, list | tuple):
            return type(value)(self._clean(v) for v in value)
        return value

    def __call__(self, _logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
        return self._clean(event)


redactor = SecretRedactor()


class LineLogger:
    """Writes each rendered line to `stream`, or to whatever sys.stdout is at that moment
    (so a replaced stdout, as under a test runner or a redirect, is followed)."""

    def __init__(self, stream: TextIO | None = None, to_stderr: bool = False) -> None:
        self._stream = stream
        self._to_stderr = to_stderr

    def msg(self, message: str) -> None:
        default = sys.stderr if self._to_stderr else sys.stdout
        print(message, file=self._stream or default, flush=True)

    debug = info = warning = warn = error = critical = exception = fatal = log = msg


def configure_logging(
    level: str = "INFO",
    fmt: str = "auto",
    secrets: Iterable[str] = (),
    stream: TextIO | None = None,
    to_stderr: bool = False,
) -> None:
    """Logs go to stdout (containers ship it); to stderr when stdout carries a document."""
    redactor.register(secrets)
    target = stream or (sys.stderr if to_stderr else sys.stdout)
    console = fmt == "console" or (fmt == "auto" and target.isatty())
    renderer: Any = (
        structlog.dev.ConsoleRenderer(colors=target.isatty())
        if console
        else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redactor,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=lambda *_: LineLogger(stream, to_stderr),
        cache_logger_on_first_use=False,
    )
    # Libraries that use the standard logging module stay quiet unless something is wrong.
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)

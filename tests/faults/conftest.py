"""The fault-injection suite: tasks killed, S3 failing, daemons stopped, disks full."""

from __future__ import annotations

import pytest

from tests.faults.figures import show_figures


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    show_figures(terminalreporter, "faults")

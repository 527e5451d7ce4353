"""The load suites: the app under concurrent uploads, backups under a busy writer."""

from __future__ import annotations

import pytest

from tests.faults.figures import show_figures


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    show_figures(terminalreporter, "load")

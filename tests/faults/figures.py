"""Figures the fault, load and security suites measure, shown at the end of the test run
(the terminal summary) so that a full-count run can be copied into docs/RELIABILITY.md."""

from __future__ import annotations

import pytest

FIGURES = pytest.StashKey[list[str]]()


def record_figure(config: pytest.Config, suite: str, line: str) -> None:
    config.stash.setdefault(FIGURES, []).append(f"[{suite}] {line}")


def show_figures(terminalreporter: pytest.TerminalReporter, suite: str) -> None:
    lines = [
        line
        for line in terminalreporter.config.stash.get(FIGURES, [])
        if line.startswith(f"[{suite}]")
    ]
    if lines:
        terminalreporter.write_sep("-", f"{suite} figures")
        for line in lines:
            terminalreporter.write_line(line)

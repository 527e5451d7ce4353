"""The security suite reuses the app tests' fixtures: a started app on a migrated database,
moto behind it, the test model in the models bucket."""

from __future__ import annotations

import pytest

from tests.app.conftest import (  # noqa: F401  (fixtures, registered by import)
    _no_app_settings_from_the_developer,
    admin_client,
    app_settings,
    client,
    make_client,
    migrated_database,
    test_model,
)
from tests.faults.figures import show_figures


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    show_figures(terminalreporter, "security")

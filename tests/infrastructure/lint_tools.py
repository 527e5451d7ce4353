"""Finding the lint tools: installed by `bash infrastructure/install-lint-tools.sh` into
.venv-tools/. Missing in CI (CI=true) is a failure; locally, a skip that says how to install."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.infrastructure.cfn_model import REPO

TOOLS_BIN = REPO / ".venv-tools" / "bin"
INSTALL = "bash infrastructure/install-lint-tools.sh"


def lint_tool(name: str) -> Path:
    for candidate in (TOOLS_BIN / name, REPO / ".venv" / "bin" / name):
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which(name)
    if found:
        return Path(found)
    reason = f"{name} is not installed: run `{INSTALL}`"
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def tools_environment() -> dict[str, str]:
    """The environment for running a tool, with the tools venv first on PATH (actionlint
    finds shellcheck there)."""
    return {**os.environ, "PATH": f"{TOOLS_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}

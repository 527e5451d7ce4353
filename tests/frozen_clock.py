"""A stopped clock for `python -m tasks` children: a sitecustomize on their PYTHONPATH replaces
`opsd.clock.utcnow`, the default of every run's `ctx.clock`, before anything imports it."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

SITECUSTOMIZE = """
import os
from datetime import datetime

import opsd.clock

_FROZEN = datetime.fromisoformat(os.environ["FROZEN_UTC"])
opsd.clock.utcnow = lambda: _FROZEN
"""


def frozen_clock(env: dict[str, str], hooks: Path, at: datetime) -> dict[str, str]:
    """`env` for children whose clock reads `at` throughout."""
    hooks.mkdir(parents=True, exist_ok=True)
    (hooks / "sitecustomize.py").write_text(SITECUSTOMIZE)
    path = os.pathsep.join(p for p in (str(hooks), env.get("PYTHONPATH")) if p)
    return {**env, "FROZEN_UTC": at.isoformat(), "PYTHONPATH": path}

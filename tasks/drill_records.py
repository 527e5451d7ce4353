"""Restore-drill results, kept in the ops state database so `restore --list` can show them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from opsd.state import OpsState

_SCHEMA = """
CREATE TABLE IF NOT EXISTS restore_drills (
    key TEXT NOT NULL,
    drilled_at TEXT NOT NULL,
    run_id TEXT NOT NULL,
    passed INTEGER NOT NULL,
    message TEXT NOT NULL,
    PRIMARY KEY (key, drilled_at, run_id)
);
"""


# `passed`: 1 passed, 0 failed, -1 not run (the drill could not run here, e.g. a full
# scratch disk: it says nothing about the backup).
_NOT_RUN = -1


@dataclass(frozen=True)
class DrillRecord:
    key: str
    drilled_at: str
    run_id: str
    passed: bool | None  # None: not run
    message: str

    @property
    def verdict(self) -> str:
        if self.passed is None:
            return "not run"
        return "passed" if self.passed else "FAILED"


def _ensure(state: OpsState) -> None:
    state.conn.executescript(_SCHEMA)


def record_drill(
    state: OpsState, key: str, run_id: str, passed: bool | None, message: str, at: datetime
) -> None:
    """`passed=None`: the drill did not run to a verdict."""
    _ensure(state)
    state.conn.execute(
        "INSERT INTO restore_drills (key, drilled_at, run_id, passed, message) "
        "VALUES (?, ?, ?, ?, ?)",
        (
            key,
            at.isoformat(timespec="seconds"),
            run_id,
            _NOT_RUN if passed is None else int(passed),
            message,
        ),
    )


def latest_drills(state: OpsState) -> dict[str, DrillRecord]:
    """The newest drill of each backup key that reached a verdict, else its newest attempt."""
    _ensure(state)
    rows = state.conn.execute(
        "SELECT key, drilled_at, run_id, passed, message FROM restore_drills d "
        "WHERE rowid = (SELECT rowid FROM restore_drills WHERE key = d.key "
        f"ORDER BY passed <> {_NOT_RUN} DESC, drilled_at DESC, rowid DESC LIMIT 1)"
    ).fetchall()
    return {
        row[0]: DrillRecord(
            row[0], row[1], row[2], None if row[3] == _NOT_RUN else bool(row[3]), row[4]
        )
        for row in rows
    }

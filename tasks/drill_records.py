"""Restore-drill results, kept in the ops state database so `restore --list` can show them."""

from __future__ import annotations

from dataclasses import dataclass

from opsd.state import OpsState, utcnow

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


@dataclass(frozen=True)
class DrillRecord:
    key: str
    drilled_at: str
    run_id: str
    passed: bool
    message: str

    @property
    def verdict(self) -> str:
        return "passed" if self.passed else "FAILED"


def _ensure(state: OpsState) -> None:
    state.conn.executescript(_SCHEMA)


def record_drill(state: OpsState, key: str, run_id: str, passed: bool, message: str) -> None:
    _ensure(state)
    state.conn.execute(
        "INSERT INTO restore_drills (key, drilled_at, run_id, passed, message) "
        "VALUES (?, ?, ?, ?, ?)",
        (key, utcnow().isoformat(timespec="seconds"), run_id, int(passed), message),
    )


def latest_drills(state: OpsState) -> dict[str, DrillRecord]:
    """The newest drill of each backup key."""
    _ensure(state)
    rows = state.conn.execute(
        "SELECT key, drilled_at, run_id, passed, message FROM restore_drills d "
        "WHERE rowid = (SELECT rowid FROM restore_drills WHERE key = d.key "
        "ORDER BY drilled_at DESC, rowid DESC LIMIT 1)"
    ).fetchall()
    return {row[0]: DrillRecord(row[0], row[1], row[2], bool(row[3]), row[4]) for row in rows}

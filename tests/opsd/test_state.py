"""The ops state (opsd/state.py): its tables, its operations, its lease, and old files."""

from __future__ import annotations

import socket
import sqlite3
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from opsd import state as state_module
from opsd.results import Status, TaskResult
from opsd.state import LEASE_TTL, STALE_CLAIM, OpsState, StateError
from tasks.metrics.cursor import IN_FLIGHT_KEY, SENT_KEY, WATERMARK_KEY, Cursor, PublishState

NOW = datetime(2026, 11, 24, 6, 5, 30, tzinfo=UTC)

# The schema as the code before opsd/state.py owned it wrote it: five modules, each with its own
# CREATE TABLE, and task_leases from before its `holder` column.
OLD_SCHEMA = """
CREATE TABLE task_runs (
    run_id TEXT PRIMARY KEY, task TEXT NOT NULL, started_at TEXT NOT NULL,
    finished_at TEXT NOT NULL, status TEXT NOT NULL, duration_s REAL NOT NULL,
    message TEXT NOT NULL, details TEXT NOT NULL
);
CREATE INDEX task_runs_by_task ON task_runs (task, finished_at);
CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE TABLE budget_alerts (
    budget TEXT NOT NULL, period TEXT NOT NULL, threshold TEXT NOT NULL, run_id TEXT NOT NULL,
    claimed_at TEXT NOT NULL, message_id TEXT, UNIQUE (budget, period, threshold)
);
CREATE TABLE cost_explorer_requests (
    day TEXT PRIMARY KEY, run_id TEXT NOT NULL, requested_at TEXT NOT NULL, answer TEXT
);
CREATE TABLE restore_drills (
    key TEXT NOT NULL, drilled_at TEXT NOT NULL, run_id TEXT NOT NULL, passed INTEGER NOT NULL,
    message TEXT NOT NULL, PRIMARY KEY (key, drilled_at, run_id)
);
CREATE TABLE task_leases (task TEXT PRIMARY KEY, run_id TEXT NOT NULL, expires_at TEXT NOT NULL);
INSERT INTO task_runs VALUES ('r1', 'backup', '2026-11-24T05:00:00+00:00',
    '2026-11-24T05:01:00+00:00', 'ok', 60.0, 'backed up', '{}');
INSERT INTO kv VALUES ('publish-metrics.watermark', '{"minute": "2026-11-24T05:10", "item": 2}',
    '2026-11-24T05:11:00+00:00');
INSERT INTO budget_alerts VALUES ('b', '2026-11', 'forecast-100', 'r2',
    '2026-11-24T05:00:00+00:00', 'message-1');
INSERT INTO cost_explorer_requests VALUES ('2026-11-24', 'r3', '2026-11-24T00:00:00+00:00',
    '{"services": [["AmazonS3", 1.5]], "note": "month to date"}');
INSERT INTO restore_drills VALUES ('backup-1.db', '2026-11-24T04:00:00+00:00', 'r4', 1, 'ok');
INSERT INTO task_leases VALUES ('publish-metrics', 'r5', '2026-11-24T06:00:00+00:00');
"""


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "ops-state.db"


@pytest.fixture
def state(path: Path):  # type: ignore[no-untyped-def]
    with OpsState(path) as opened:
        yield opened


def test_a_state_file_of_the_old_schema_opens_and_keeps_its_data(path: Path) -> None:
    old = sqlite3.connect(path)
    old.executescript(OLD_SCHEMA)
    old.close()

    with OpsState(path) as state:
        assert state.last_runs()["backup"]["message"] == "backed up"
        assert PublishState(state).raw_cursor() == {"minute": "2026-11-24T05:10", "item": 2}
        assert state.cost_answer("2026-11-24")["services"] == [["AmazonS3", 1.5]]
        assert state.latest_drills()["backup-1.db"].verdict == "passed"
        # The alert sent under the old UNIQUE key is still sent: never again this period.
        assert not state.claim_alert("b", "2026-11", "forecast-100", "r6", NOW + STALE_CLAIM)
        assert state.claim_alert("b", "2026-11", "actual-100", "r6", NOW)
        # The old lease (no holder column) has lapsed: taken over, its run recorded failed.
        taken = state.take_lease("publish-metrics", "r6", NOW)
        assert taken.taken and taken.holder and taken.holder.run_id == "r5"
        assert state.db["task_runs"].get("r5")["status"] == "failed"

    columns = sqlite3.connect(path).execute("PRAGMA table_info(task_leases)").fetchall()
    assert "holder" in {row[1] for row in columns}


def test_a_new_file_has_every_table_and_the_context_closes_it(path: Path) -> None:
    with OpsState(path) as state:
        state.set("k", {"a": 1})
    tables = {row[0] for row in sqlite3.connect(path).execute("SELECT name FROM sqlite_master")}

    assert set(state_module.TABLES) <= tables and "task_runs_by_task" in tables
    with pytest.raises(sqlite3.ProgrammingError):
        state.get("k")
    with OpsState(path) as again:
        assert again.get("k") == {"a": 1}


def test_runs_are_recorded_and_the_newest_of_each_task_is_listed(state: OpsState) -> None:
    state.record_run("a", NOW, TaskResult("backup", Status.OK, "first"))
    time.sleep(0.002)
    state.record_run("b", NOW, TaskResult("backup", Status.FAILED, "second", {"x": 1}))

    newest = state.last_runs()["backup"]

    assert (newest["run_id"], newest["status"], newest["message"]) == ("b", "failed", "second")


def test_an_alert_is_claimed_once_until_released_or_stale(state: OpsState) -> None:
    key = ("budget", "2026-11", "actual-100")

    assert state.claim_alert(*key, "r1", NOW)
    assert not state.claim_alert(*key, "r2", NOW + STALE_CLAIM)  # not older than the limit
    state.release_alert(*key, "r2")  # not its claim: nothing released
    assert not state.claim_alert(*key, "r2", NOW)
    state.release_alert(*key, "r1")
    assert state.claim_alert(*key, "r2", NOW)
    assert state.claim_alert(*key, "r3", NOW + STALE_CLAIM + timedelta(seconds=1))  # r2 died
    state.confirm_alert(*key, "message-1")
    assert not state.claim_alert(*key, "r4", NOW + timedelta(days=20))  # sent: never again


def test_the_days_cost_request_is_claimed_once_and_its_answer_shared(state: OpsState) -> None:
    assert state.claim_cost_request("2026-11-24", "r1", NOW)
    assert not state.claim_cost_request("2026-11-24", "r2", NOW)
    assert state.cost_answer("2026-11-24") is None  # r1 is still asking
    state.store_cost_answer("2026-11-24", {"services": [], "note": "n"})
    assert state.cost_answer("2026-11-24") == {"services": [], "note": "n"}


def test_a_drill_that_could_not_run_does_not_hide_the_last_verdict(state: OpsState) -> None:
    state.record_drill("k", "r1", False, "bad", NOW)
    state.record_drill("k", "r2", None, "not run: disk full", NOW + timedelta(hours=1))
    state.record_drill("other", "r3", None, "not run", NOW)

    drills = state.latest_drills()

    assert (drills["k"].run_id, drills["k"].verdict) == ("r1", "FAILED")
    assert drills["other"].verdict == "not run"


def test_a_cursor_move_is_all_or_nothing(state: OpsState, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    cursors = PublishState(state)
    cursors.move(Cursor("2026-11-24T05:10"), NOW, sent_minute="2026-11-24T05:09")
    state.set(IN_FLIGHT_KEY, {"run_id": "r1"})
    real_set = OpsState.set

    def failing_set(self: OpsState, key: str, *args: object) -> None:
        if key == SENT_KEY:
            raise sqlite3.OperationalError("disk I/O error")
        real_set(self, key, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(OpsState, "set", failing_set)
    with pytest.raises(sqlite3.OperationalError):
        cursors.move(Cursor("2026-11-24T05:12"), NOW, sent_minute="2026-11-24T05:11")
    monkeypatch.undo()

    with OpsState(state.path) as other:  # what another process sees
        assert other.get(WATERMARK_KEY) == {"minute": "2026-11-24T05:10", "item": 0}
        assert other.get(IN_FLIGHT_KEY) == {"run_id": "r1"}
        assert [m for m, _ in PublishState(other).sent()] == ["2026-11-24T05:09"]


def _elsewhere(run: str) -> dict[str, object]:
    return {"host": "another-host", "pid": 1, "started_at": NOW.isoformat(), "task": run}


def test_a_lease_by_any_name_blocks_others_until_it_lapses(state: OpsState) -> None:
    assert state.take_lease("nightly-report", "r1", NOW, _elsewhere("nightly-report")).taken
    assert state.take_lease("other-lease", "r9", NOW).taken  # leases are independent

    held = state.take_lease("nightly-report", "r2", NOW + LEASE_TTL)
    lapsed = state.take_lease("nightly-report", "r2", NOW + LEASE_TTL + timedelta(seconds=1))

    assert not held.taken and held.holder and held.holder.run_id == "r1"
    assert lapsed.taken and lapsed.recorded_dead_run
    dead = state.db["task_runs"].get("r1")
    assert (dead["task"], dead["status"]) == ("nightly-report", "failed")
    assert "taken over by run r2" in dead["message"]


def test_a_lease_of_a_dead_process_on_this_host_is_taken_at_once(state: OpsState) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    holder = {"host": socket.gethostname(), "pid": gone.pid, "started_at": NOW.isoformat()}
    state.take_lease("job", "dead", NOW, holder)
    state.record_run("dead", NOW, TaskResult("job", Status.OK, "it recorded itself"))

    taken = state.take_lease("job", "r2", NOW + timedelta(seconds=1))

    assert taken.taken and taken.holder and taken.holder.run_id == "dead"
    assert not taken.recorded_dead_run  # its own record stays
    assert state.db["task_runs"].get("dead")["status"] == "ok"
    assert not state.take_lease("job", "r3", NOW + timedelta(seconds=2)).taken  # r2 lives


def test_a_held_lease_is_kept_alive_and_released(state: OpsState, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(state_module, "HEARTBEAT_EVERY_S", 0.02)
    with state.lease("job", "r1", NOW) as lease:
        assert lease.taken
        first = state.db["task_leases"].get("job")["expires_at"]
        deadline = time.monotonic() + 10
        while state.db["task_leases"].get("job")["expires_at"] == first:
            assert time.monotonic() < deadline, "the heartbeat never renewed the lease"
            time.sleep(0.01)
        with state.lease("job", "r2", NOW + timedelta(seconds=1)) as other:
            assert not other.taken
        assert lease.lost is None

    assert state.db["task_leases"].count == 0
    assert state.take_lease("job", "r3", NOW).taken


def test_a_lease_taken_over_tells_its_old_holder(state: OpsState, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(state_module, "HEARTBEAT_EVERY_S", 0.02)
    with state.lease("job", "r1", NOW) as lease:
        state.db.execute("UPDATE task_leases SET run_id = 'r2'")
        deadline = time.monotonic() + 10
        while lease.lost is None:
            assert time.monotonic() < deadline, "the heartbeat never noticed"
            time.sleep(0.01)

    assert lease.lost == "the lease was taken over by another run"
    assert state.db["task_leases"].get("job")["run_id"] == "r2"  # not released: not r1's


def test_a_directory_is_a_state_error(tmp_path: Path) -> None:
    with pytest.raises(StateError, match=r"^OPS_STATE_PATH .*: cannot open the ops state"):
        OpsState(tmp_path)


def test_a_file_that_is_not_sqlite_is_set_aside_once(path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    path.write_bytes(b"garbage" * 100)

    with OpsState(path) as state:
        state.set("k", 1)
        assert state.set_aside is not None and state.set_aside.read_bytes().startswith(b"garbage")

    warnings = capsys.readouterr().err.splitlines()
    assert len(warnings) == 1 and "not an SQLite database: kept as" in warnings[0]
    with OpsState(path) as again:
        assert again.get("k") == 1 and again.set_aside is None

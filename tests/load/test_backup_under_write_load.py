"""Consistency under load: the app database written 100 analyses per second (through the
shared connection helper, as the app's writes go) while backups run back to back.

Every backup passes its restore drill, each backup's row count lies between the counts
committed before it started and after it ended, and no write fails.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from opsd.database import connect
from tests.conftest import add_analysis, create_app_database
from tests.faults.figures import record_figure
from tests.task_processes import (
    BUCKET,
    drill_every_backup,
    last_line,
    moto_endpoint,
    run_tasks_cli,
    s3_client,
    settings_for,
    task_env,
    trials,
)
from tests.tasks.backup_helpers import add_bulk

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
SECONDS = trials(full=60, under_ci=15, variable="LOAD_SECONDS")
RATE = 100


@dataclass
class Writer:
    """Inserts a drawing and its analysis, one transaction each, RATE times a second."""

    path: Path
    committed: int = 0
    failures: list[str] = field(default_factory=list)
    slowest_s: float = 0.0
    stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        conn = connect(self.path)
        self.committed = conn.execute("SELECT count(*) FROM analyses").fetchone()[0]
        conn.close()
        self._thread = threading.Thread(target=self._write, name="app-writer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _write(self) -> None:
        conn = connect(self.path, busy_timeout_ms=30_000)
        next_at = time.monotonic()
        try:
            while not self.stop.is_set():
                next_at += 1 / RATE
                time.sleep(max(0.0, next_at - time.monotonic()))
                began = time.monotonic()
                try:
                    self._insert(conn)
                except Exception as exc:
                    self.failures.append(f"{type(exc).__name__}: {exc}")
                    continue
                self.committed += 1
                self.slowest_s = max(self.slowest_s, time.monotonic() - began)
        finally:
            conn.close()

    def _insert(self, conn: sqlite3.Connection) -> None:
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        with conn:
            conn.execute("BEGIN IMMEDIATE")
            add_analysis(conn, stamp)

    def finish(self) -> None:
        self.stop.set()
        self._thread.join(30)


def test_backups_under_a_busy_writer_are_consistent_and_lose_nothing(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    with moto_endpoint(BUCKET) as endpoint:
        env = task_env(endpoint, tmp_path, BACKUP_PART_SIZE_MB="5")
        database = add_bulk(create_app_database(Path(env["DATABASE_PATH"]), analyses=2000), 6)
        writer = Writer(database)
        initial = writer.committed
        windows: dict[str, tuple[int, int]] = {}
        writer.start()
        began = time.monotonic()
        try:
            while time.monotonic() - began < SECONDS:
                prefix = f"run-{len(windows):03d}"
                before = writer.committed
                done = run_tasks_cli({**env, "BACKUP_PREFIX": prefix}, "backup")
                after = writer.committed
                assert done.returncode == 0, last_line(done.stderr + done.stdout)
                windows[prefix] = (before, after)
        finally:
            writer.finish()
        elapsed = time.monotonic() - began
        assert writer.failures == [], writer.failures[:3]

        s3 = s3_client(endpoint)
        for prefix, (before, after) in windows.items():
            assert len(drill_every_backup(settings_for(endpoint, prefix))) == 1
            (item,) = s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{prefix}/")["Contents"]
            head = s3.head_object(Bucket=BUCKET, Key=item["Key"])
            rows = json.loads(head["Metadata"]["row-counts"])["analyses"]
            assert before <= rows <= after, f"{prefix}: {rows} rows, not in [{before}, {after}]"

    written = writer.committed - initial
    conn = connect(database, readonly=True)
    stored = conn.execute("SELECT count(*) FROM analyses").fetchone()[0]
    conn.close()
    assert stored == writer.committed, f"{writer.committed - stored} committed rows lost"
    # The offered rate; on a loaded 2-core machine fsync-bound commits fall somewhat behind.
    assert written >= 0.5 * RATE * elapsed, f"only {written} writes in {elapsed:.0f} s"
    record_figure(
        request.config,
        "load",
        f"backups under {RATE} writes/s offered for {elapsed:.0f} s: {len(windows)} backups, "
        f"all drilled, each within its window; {written} rows written "
        f"({written / elapsed:.0f}/s), 0 failed, 0 lost; slowest write "
        f"{writer.slowest_s * 1000:.0f} ms",
    )

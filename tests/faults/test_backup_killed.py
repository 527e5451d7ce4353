"""kill -9 of `python -m tasks backup` at random points: nothing half-done is ever a backup.

Each trial writes under its own BACKUP_PREFIX (so every trial has a fresh key), kills the
backup at a random moment between its start and its normal end, then runs the next backup
as the schedule would. After each trial: every listed backup passes the restore drill, the
scratch directory is empty (the next run removes what the killed one could not), and the
live database is byte-for-byte unchanged.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import create_app_database
from tests.faults.figures import record_figure
from tests.task_processes import (
    BUCKET,
    ROOT,
    drill_every_backup,
    last_line,
    moto_endpoint,
    run_tasks_cli,
    s3_client,
    scratch_leftovers,
    settings_for,
    sha256_of,
    task_env,
    tasks_command,
    trials,
)
from tests.tasks.backup_helpers import add_bulk

pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.timeout(1800)]
TRIALS = trials(full=50, under_ci=10, variable="FAULT_TRIALS")


class LoggedRun:
    """A backup child whose JSON log events are timestamped as they arrive."""

    def __init__(self, env: dict[str, str]) -> None:
        self.began = time.monotonic()
        self.events: list[tuple[float, str]] = []
        self.process = subprocess.Popen(
            tasks_command("backup"),
            env={**env, "PYTHONUNBUFFERED": "1"},
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            try:
                event = json.loads(line).get("event", "")
            except json.JSONDecodeError:
                event = line.strip()
            self.events.append((time.monotonic() - self.began, event))

    def seen(self, event: str) -> float | None:
        return next((at for at, name in self.events if name == event), None)

    def finish(self, timeout: float = 120) -> int:
        code = self.process.wait(timeout)
        self._reader.join(10)
        return code


def phase_of(run: LoggedRun, object_exists: bool, uploads_open: bool) -> str:
    if run.seen("task finished") is not None:
        return "after the task finished"
    if object_exists:
        return "after completion, before exit"
    if uploads_open:
        return "during the multipart upload"
    if run.seen("snapshot taken") is not None:
        return "after the snapshot, before the upload"
    return "before the snapshot"


def test_backups_killed_at_random_points_leave_only_verified_backups(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    rng = random.Random(int(time.time()))
    with moto_endpoint(BUCKET) as endpoint:
        env = task_env(endpoint, tmp_path, BACKUP_PART_SIZE_MB="5", BACKUP_UPLOAD_CONCURRENCY="2")
        database = add_bulk(create_app_database(Path(env["DATABASE_PATH"]), analyses=2000), 9)
        scratch = Path(env["SCRATCH_DIR"])
        live_sha256 = sha256_of(database)
        s3 = s3_client(endpoint)

        calibration = LoggedRun({**env, "BACKUP_PREFIX": "calibration"})
        assert calibration.finish() == 0, calibration.events
        started = calibration.seen("task started")
        snapshot = calibration.seen("snapshot taken")
        finished = calibration.seen("task finished")
        assert started is not None and snapshot is not None and finished is not None

        phases: Counter[str] = Counter()
        follow_up_skipped = 0
        for trial in range(TRIALS):
            prefix = f"trial-{trial:03d}"
            run = LoggedRun({**env, "BACKUP_PREFIX": prefix})
            # Half the kills anywhere in the run, half once the snapshot exists (the upload).
            earliest = 0.8 * started if rng.random() < 0.5 else snapshot
            time.sleep(rng.uniform(earliest, 1.05 * finished))
            run.process.send_signal(signal.SIGKILL)
            run.finish()
            listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{prefix}/").get("Contents", [])
            uploads = s3.list_multipart_uploads(Bucket=BUCKET, Prefix=f"{prefix}/")
            phases[phase_of(run, bool(listed), bool(uploads.get("Uploads")))] += 1

            if listed:  # whatever a kill left visible must already be a sound backup
                drill_every_backup(settings_for(endpoint, prefix))
            follow_up = run_tasks_cli({**env, "BACKUP_PREFIX": prefix}, "backup")
            assert follow_up.returncode == 0, last_line(follow_up.stderr + follow_up.stdout)
            follow_up_skipped += "already exists" in follow_up.stdout

            drilled = drill_every_backup(settings_for(endpoint, prefix))
            assert drilled, f"trial {trial}: no backup after the follow-up run"
            assert scratch_leftovers(scratch) == [], f"trial {trial}: temp files left"
            assert sha256_of(database) == live_sha256, f"trial {trial}: live database changed"

    summary = ", ".join(f"{name}: {count}" for name, count in sorted(phases.items()))
    record_figure(
        request.config,
        "faults",
        f"kill -9 of backup: {TRIALS} trials ({summary}); follow-up runs skipped as done: "
        f"{follow_up_skipped}; backups failing the drill: 0; temp files left: 0; "
        "live database changed: 0",
    )

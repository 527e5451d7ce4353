"""A restore drill whose scratch disk is full did not run: `restore --list` must not show the
backup as failed (issue 12.9), and no RestoreDrillFailed is published for it.

Where this process may mount (root), SCRATCH_DIR is a 2 MiB tmpfs and the backup is larger;
elsewhere the download's writes fail with ENOSPC in-process.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from opsd.aws import AwsClients
from opsd.runner import TaskContext
from tests.conftest import create_app_database
from tests.faults.figures import record_figure
from tests.faults.test_restore_disk_full import DISK_BYTES, FillingFile, small_disk
from tests.task_processes import (
    BUCKET,
    last_line,
    moto_endpoint,
    run_tasks_cli,
    settings_for,
    task_env,
)
from tests.tasks.backup_helpers import add_bulk, run_task

pytestmark = [pytest.mark.faults, pytest.mark.slow]


def _drill_column(env: dict[str, str]) -> dict[str, Any]:
    listed = run_tasks_cli(env, "restore", "--list", "--json")
    assert listed.returncode == 0, last_line(listed.stderr)
    return {row["key"]: row["drill"] for row in json.loads(listed.stdout)}


def test_a_drill_on_a_full_scratch_disk_is_not_run_and_the_backup_not_failed(
    tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    with moto_endpoint(BUCKET) as endpoint:
        env = task_env(endpoint, tmp_path)
        add_bulk(create_app_database(Path(env["DATABASE_PATH"]), analyses=300), 4)
        made = run_tasks_cli(env, "backup")
        assert made.returncode == 0, last_line(made.stderr)
        key = json.loads(last_line(made.stdout))["key"]
        scratch = tmp_path / "small-scratch"
        env["SCRATCH_DIR"] = str(scratch)
        with small_disk(scratch) as mounted:
            if mounted:
                drill = run_tasks_cli(env, "verify-backup")
                code, message = drill.returncode, last_line(drill.stderr)
            else:
                real_fdopen = os.fdopen
                monkeypatch.setattr(
                    "tasks.backups.download.os.fdopen",
                    lambda fd, mode: FillingFile(real_fdopen(fd, mode), DISK_BYTES),
                )
                settings = settings_for(
                    endpoint,
                    scratch_dir=scratch,
                    database_path=Path(env["DATABASE_PATH"]),
                    ops_state_path=Path(env["OPS_STATE_PATH"]),
                )
                ctx = TaskContext(settings, AwsClients(settings), "verify-backup")
                try:
                    result = run_task(ctx)
                finally:
                    ctx.close()
                code, message = result.exit_code, f"verify-backup failed: {result.message}"
            assert list(scratch.iterdir()) == []

        assert code == 1, message
        assert "not run" in message and "No space left on device" in message
        assert _drill_column(env) == {key: "not run"}
        env["SCRATCH_DIR"] = str(tmp_path / "scratch")
        assert run_tasks_cli(env, "verify-backup").returncode == 0
        assert _drill_column(env) == {key: "passed"}
    how = "a real 2 MiB tmpfs" if mounted else "simulated ENOSPC, no mount"
    record_figure(
        request.config,
        "faults",
        f"drill on a full scratch disk ({how}): {message}; listed: not run",
    )

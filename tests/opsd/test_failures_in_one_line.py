"""Failures say what was done in one line, with no traceback (issue 12.9): a bad
OPS_STATE_PATH in tasks and `opsd status`, lifecycle-check with the AWS endpoint down."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.task_processes import ROOT, free_port

STATE_PATHS = {
    "a directory": lambda tmp: tmp,
    "below a regular file": lambda tmp: _written(tmp / "file") / "ops-state.db",
}


def _written(path: Path) -> Path:
    path.write_text("not a database\n")
    return path


def _run(tmp_path: Path, *command: str, **env: str) -> subprocess.CompletedProcess[str]:
    variables = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    variables.update(
        PYTHONPATH=str(ROOT),
        DATABASE_PATH=str(tmp_path / "app.db"),
        SCRATCH_DIR=str(tmp_path / "scratch"),
        LOG_FORMAT="json",
        **env,
    )
    return subprocess.run(
        [sys.executable, *command],
        env=variables,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("kind", sorted(STATE_PATHS))
@pytest.mark.parametrize(
    "command",
    [
        ("-m", "tasks", "restore", "--list"),
        ("-m", "tasks", "backup"),
        ("-c", "from opsd.cli import main; raise SystemExit(main(['status']))"),
    ],
    ids=["tasks restore", "tasks backup", "opsd status"],
)
def test_a_bad_ops_state_path_is_one_line_and_exit_2(
    tmp_path: Path, kind: str, command: tuple[str, ...]
) -> None:
    state = STATE_PATHS[kind](tmp_path)

    done = _run(tmp_path, *command, OPS_STATE_PATH=str(state))

    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr + done.stdout
    assert lines[0].startswith(f"configuration error: OPS_STATE_PATH {state}: ")


def test_a_state_file_that_is_not_sqlite_is_kept_aside_and_a_new_one_started(
    tmp_path: Path,
) -> None:
    state = _written(tmp_path / "ops-state.db")

    done = _run(tmp_path, "-m", "tasks", "restore", "--help", OPS_STATE_PATH=str(state))
    assert done.returncode == 0 and not list(tmp_path.glob("*.unreadable-*"))  # nothing opened

    done = _run(
        tmp_path,
        "-c",
        "from opsd.cli import main; raise SystemExit(main(['status']))",
        OPS_STATE_PATH=str(state),
    )

    assert done.returncode == 0, done.stderr
    (kept,) = tmp_path.glob("ops-state.db.unreadable-*")
    assert kept.read_text() == "not a database\n"
    assert state.read_bytes().startswith(b"SQLite format 3")
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"warning: OPS_STATE_PATH {state}: ")
    assert kept.name in lines[0]


@pytest.mark.slow
def test_lifecycle_check_with_the_endpoint_down_fails_in_one_line(tmp_path: Path) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there

    done = _run(
        tmp_path,
        "-m",
        "tasks",
        "lifecycle-check",
        AWS_ENDPOINT_URL=endpoint,
        OPS_STATE_PATH=str(tmp_path / "ops-state.db"),
    )

    assert done.returncode == 1
    assert "Traceback" not in done.stdout + done.stderr
    events = [json.loads(line)["event"] for line in done.stdout.splitlines()]
    assert "task crashed" not in events
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("lifecycle-check failed: check the storage policy: ")
    assert "EndpointConnectionError" in lines[0]

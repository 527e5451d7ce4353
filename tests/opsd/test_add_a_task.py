"""A task is one module and one registry row: a throw-away task added that way is scheduled by
the daemon, run at start in its order, and listed by `python -m tasks --help` and `opsd status`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from opsd.aws import AwsClients
from opsd.cli import initial_runs
from opsd.cli import main as opsd_main
from opsd.daemon import Daemon
from opsd.schedule import TaskSpec
from opsd.settings import Settings
from opsd.state import OpsState
from tasks.registry import TASKS

ROOT = Path(__file__).resolve().parents[2]

MODULE = '''
"""A throw-away task: says which tasks had finished before it ran."""

from opsd.results import Status, TaskResult

DESCRIPTION = "A throw-away task for the registry test."


def add_arguments(parser):
    parser.add_argument("--greeting", default="hello", help="what it says first")


def run(ctx, args):
    before = ", ".join(sorted(ctx.state.last_runs()))
    return TaskResult(ctx.task, Status.OK, f"{args.greeting}; ran after: {before}")
'''

# Between the drill (20) and the lifecycle check (30).
ROW = TaskSpec(
    "throwaway", "throwaway_task", "cron(45 1 * * ? *)", "a throw-away task", start_order=25
)


@pytest.fixture
def module_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The one module, importable, and the one row, in the registry."""
    folder = tmp_path / "throwaway"
    folder.mkdir()
    (folder / "throwaway_task.py").write_text(MODULE)
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setitem(TASKS, ROW.name, ROW)
    yield folder
    sys.modules.pop("throwaway_task", None)


def wait_for_run(settings: Settings, task: str, timeout_s: float = 60) -> dict[str, object]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        state = OpsState(settings.ops_state_path)
        try:
            run = state.last_runs().get(task)
        finally:
            state.close()
        if run:
            return run
        time.sleep(0.05)
    raise AssertionError(f"{task} did not run within {timeout_s}s")


def test_the_daemon_schedules_it_runs_it_at_start_in_order_and_status_lists_it(
    module_dir: Path, settings: Settings, aws: AwsClients, capsys: pytest.CaptureFixture[str]
) -> None:
    names = initial_runs(settings, aws)
    at = names.index("throwaway")
    assert names[at - 1 : at + 2] == ["verify-backup", "throwaway", "lifecycle-check"]

    daemon = Daemon(settings, TASKS, aws)
    try:
        daemon.start(initial_runs=names)
        planned = daemon.next_runs()["throwaway"]
        assert planned is not None and (planned.hour, planned.minute) == (1, 45)
        run = wait_for_run(settings, "throwaway")
    finally:
        daemon.shutdown()
    assert run["status"] == "ok"
    assert run["message"] == "hello; ran after: backup, verify-backup"

    capsys.readouterr()  # the runs' log lines
    assert opsd_main(["status", "--json"]) == 0
    rows = {row["task"]: row for row in json.loads(capsys.readouterr().out)["tasks"]}
    assert rows["throwaway"]["schedule"] == "cron(45 1 * * ? *)"
    assert rows["throwaway"]["status"] == "ok"
    assert rows["throwaway"]["next_run"] == planned.isoformat()
    assert opsd_main(["status"]) == 0
    assert "\nthrowaway " in capsys.readouterr().out


def tasks_cli_with_the_row(module_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m tasks ARGS` (tasks/__main__.py) in a process whose registry has the row."""
    code = (
        "import runpy; from opsd.schedule import TaskSpec; from tasks.registry import TASKS; "
        f"TASKS[{ROW.name!r}] = {ROW!r}; runpy.run_module('tasks', run_name='__main__')"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(module_dir), str(ROOT)])}
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.slow
def test_python_m_tasks_lists_it_and_its_options(module_dir: Path) -> None:
    listing = tasks_cli_with_the_row(module_dir, "--help")
    assert listing.returncode == 0, listing.stderr
    assert "  throwaway        a throw-away task [cron(45 1 * * ? *)]" in listing.stdout

    own = tasks_cli_with_the_row(module_dir, "throwaway", "--help")
    assert own.returncode == 0, own.stderr
    assert own.stdout.startswith("usage: python -m tasks throwaway [-h] [--greeting GREETING]")
    assert "A throw-away task for the registry test. Schedule: cron(45 1 * * ? *)." in own.stdout

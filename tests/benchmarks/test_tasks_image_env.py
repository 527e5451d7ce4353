"""The environment the backup benchmark runs our task in: the tasks image's packages only."""

from __future__ import annotations

import subprocess
from pathlib import Path

from benchmarks.tasks_image_env import tasks_image_python


def test_it_holds_the_tasks_packages_and_not_the_dev_venvs(tmp_path: Path) -> None:
    python = tasks_image_python(tmp_path)
    imports = "import tasks.backup, apsw, crc32c, botocore, psycopg"
    assert subprocess.run([python, "-c", imports], check=False).returncode == 0
    for extra in ("numpy", "rich", "pytest", "moto"):
        found = subprocess.run([python, "-c", f"import {extra}"], check=False)
        assert found.returncode != 0, f"{extra} is not in the tasks image"


def test_it_is_built_once_and_runs_the_tree_as_it_is(tmp_path: Path) -> None:
    python = tasks_image_python(tmp_path)
    marker = Path(python).parents[1] / "complete"
    built = marker.stat().st_mtime_ns
    assert tasks_image_python(tmp_path) == python
    assert marker.stat().st_mtime_ns == built
    where = subprocess.run(
        [python, "-c", "import tasks; print(tasks.__file__)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert where.startswith(str(Path(__file__).resolve().parents[2] / "tasks"))

"""What `make run` and `make test` would install, read from `make -n` on a venv in tmp_path:
run installs only what running needs; a run-only venv never satisfies the test targets."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RUN_INSTALL = "-c constraints.txt -e '.[app,local]'"
DEV_INSTALL = "-c constraints.txt -e '.[dev]'"
INPUTS = ("pyproject.toml", "constraints.txt")

pytestmark = pytest.mark.skipif(not shutil.which("make"), reason="needs make")


def plan(venv: Path, target: str, *variables: str) -> str:
    """The commands `make TARGET` would run, without running them."""
    # Under `make test` the variables of the outer make would turn on its directory lines.
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    return subprocess.run(
        ["make", "--no-print-directory", "-n", target, f"VENV={venv}", *variables],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def a_venv(tmp_path: Path, *stamps: str) -> Path:
    """A venv folder with a python and these stamps, newer than pyproject.toml and the lock."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").touch()
    later = max((ROOT / name).stat().st_mtime for name in INPUTS) + 100
    for stamp in stamps:
        (venv / stamp).touch()
        os.utime(venv / stamp, (later, later))
    return venv


def test_a_fresh_run_installs_only_what_running_needs(tmp_path: Path) -> None:
    commands = plan(tmp_path / "none", "run")
    assert "-m venv" in commands
    assert "pip install --quiet --disable-pip-version-check --prefix" in commands
    assert RUN_INSTALL in commands
    assert DEV_INSTALL not in commands
    assert commands.rstrip().endswith("/bin/opsd run")


@pytest.mark.parametrize("target", ["test", "lint", "bench", "venv"])
def test_a_run_only_venv_does_not_satisfy_the_other_targets(tmp_path: Path, target: str) -> None:
    venv = a_venv(tmp_path, ".installed-run")
    assert RUN_INSTALL not in plan(venv, "run")
    commands = plan(venv, target)
    assert DEV_INSTALL in commands
    assert "-m venv" not in commands  # the venv is completed, not made anew


def test_a_full_venv_serves_run_and_test_without_installing(tmp_path: Path) -> None:
    venv = a_venv(tmp_path, ".installed-run", ".installed-dev")
    for target in ("run", "test"):
        commands = plan(venv, target)
        assert RUN_INSTALL not in commands
        assert DEV_INSTALL not in commands


def test_a_changed_pyproject_makes_run_install_again_only_what_it_needs(tmp_path: Path) -> None:
    venv = a_venv(tmp_path)
    for stamp in (".installed-run", ".installed-dev"):
        (venv / stamp).touch()
        os.utime(venv / stamp, (0, 0))  # older than pyproject.toml
    commands = plan(venv, "run")
    assert RUN_INSTALL in commands
    assert DEV_INSTALL not in commands
    assert DEV_INSTALL in plan(venv, "test")


def test_a_new_lock_installs_the_pinned_versions_again(tmp_path: Path) -> None:
    venv = a_venv(tmp_path, ".installed-run", ".installed-dev")
    between = (ROOT / "pyproject.toml").stat().st_mtime + 1
    for stamp in (".installed-run", ".installed-dev"):
        os.utime(venv / stamp, (between, between))
    lock = tmp_path / "constraints.txt"
    shutil.copy(ROOT / "constraints.txt", lock)
    os.utime(lock, (between + 10, between + 10))
    commands = plan(venv, "test", f"LOCK={lock}")
    assert f"-c {lock} -e '.[dev]'" in commands

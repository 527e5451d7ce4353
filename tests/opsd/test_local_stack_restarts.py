"""The local stack remembers across restarts of `opsd run` (`make run`), after Ctrl-C, after
a kill -9 of the whole job and after a kill -9 of `opsd run` alone: the backups taken before
are listed and restore."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.opsd.local_stack import LocalStack

pytestmark = pytest.mark.slow


def backup_keys(stack: LocalStack) -> list[str]:
    listing = stack.tasks("restore", "--list", "--json")
    assert listing.returncode == 0, listing.stderr
    return [row["key"] for row in json.loads(listing.stdout)]


@pytest.mark.parametrize("ending", ["ctrl-c", "kill -9", "kill -9 opsd alone"])
def test_backups_survive_a_restart_of_the_local_stack(tmp_path: Path, ending: str) -> None:
    stack = LocalStack(tmp_path)
    stack.start()
    try:
        keys = backup_keys(stack)
        assert keys, "the first run at start takes a backup"
        if ending == "ctrl-c":
            assert stack.stop() == 0, stack.log_path.read_text()[-3000:]
        elif ending == "kill -9":
            stack.kill()
        else:
            stack.kill_opsd()
        stack.start()
        assert stack.healthy()
        assert set(keys) <= set(backup_keys(stack))
        status = stack.status()
        # A backup existed, so this start took none of its own; the drill found it.
        assert status["verify-backup"]["status"] == "ok", status["verify-backup"]
        restored = stack.tasks("restore", "--key", keys[0], "--to", str(tmp_path / "r.db"))
        assert restored.returncode == 0, restored.stderr
        assert (tmp_path / "r.db").stat().st_size > 0
        assert "local aws state unreadable" not in stack.log_path.read_text()
    finally:
        stack.kill()

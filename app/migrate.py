"""Apply pending Alembic migrations, after a `pre-migration` backup (ARCHITECTURE §4, §8).

The backup is taken by running the backup task as a command: the app never imports `tasks`.
No backup is taken on a fresh install (no database yet) or when nothing is pending; when the
backup fails, nothing is migrated. On PostgreSQL (DATABASE_URL) the backup task does not apply:
RDS automated backups cover the database, and an advisory lock makes the app tasks that start
together migrate one after another.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, text

from app.database import engine_for
from app.settings import AppSettings

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
BACKUP_COMMAND: tuple[str, ...] = (
    sys.executable,
    "-m",
    "tasks",
    "backup",
    "--reason",
    "pre-migration",
)
BACKUP_TIMEOUT_S = 30 * 60

log = structlog.get_logger()


class MigrationError(Exception):
    """The migration did not run; the message says why in one line."""


@dataclass(frozen=True)
class MigrationOutcome:
    applied: list[str]
    backed_up: bool
    fresh_install: bool

    def describe(self) -> str:
        if not self.applied:
            return "database schema is up to date"
        if self.backed_up:
            backup = " after a pre-migration backup"
        elif self.fresh_install:
            backup = " (fresh install)"
        else:
            backup = " (no pre-migration backup: not SQLite; RDS automated backups cover it)"
        return f"applied {len(self.applied)} migration(s): {', '.join(self.applied)}{backup}"


def alembic_config(migrations_dir: Path = MIGRATIONS_DIR) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    return config


def pending_revisions(engine: Engine, migrations_dir: Path = MIGRATIONS_DIR) -> list[str]:
    """Revisions between the database's current one and the head, oldest first."""
    script = ScriptDirectory.from_config(alembic_config(migrations_dir))
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    upgrades = script.iterate_revisions(script.get_current_head(), current)
    return [revision.revision for revision in reversed(list(upgrades))]


MIGRATION_LOCK_KEY = 0x4452_4157  # pg_advisory_xact_lock's key: any fixed number


def _is_fresh(path: Path, engine: Engine) -> bool:
    if engine.dialect.name == "sqlite" and (not path.exists() or path.stat().st_size == 0):
        return True
    return not inspect(engine).get_table_names()


def run_backup(backup_command: Sequence[str]) -> None:
    """Run the backup command; MigrationError with its last error line when it fails."""
    log.info("pre-migration backup", command=" ".join(backup_command))
    try:
        done = subprocess.run(
            list(backup_command),
            capture_output=True,
            text=True,
            timeout=BACKUP_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise MigrationError(f"pre-migration backup could not run: {exc}") from None
    if done.returncode != 0:
        lines = [line for line in (done.stderr + done.stdout).splitlines() if line.strip()]
        reason = lines[-1].strip() if lines else "no output"
        raise MigrationError(
            f"pre-migration backup failed (exit {done.returncode}): {reason}; nothing migrated"
        )


def migrate(
    settings: AppSettings,
    backup_command: Sequence[str] | None = BACKUP_COMMAND,
    migrations_dir: Path = MIGRATIONS_DIR,
) -> MigrationOutcome:
    """Bring the app database to the newest schema; `backup_command=None` skips the backup
    (only for callers that took one themselves, and tests)."""
    path = settings.database_path
    existed = path.exists() or not settings.database_is_sqlite
    engine = engine_for(settings)
    try:
        fresh = not existed or _is_fresh(path, engine)
        pending = pending_revisions(engine, migrations_dir)
        if not pending:
            return MigrationOutcome(applied=[], backed_up=False, fresh_install=fresh)
        backed_up = False
        if not fresh and backup_command is not None and settings.database_is_sqlite:
            run_backup(backup_command)
            backed_up = True
        config = alembic_config(migrations_dir)
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
                )
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
        log.info("database migrated", revisions=pending, backed_up=backed_up)
        return MigrationOutcome(applied=pending, backed_up=backed_up, fresh_install=fresh)
    finally:
        engine.dispose()

"""Schema migrations: a pre-migration backup first whenever one is pending, never otherwise."""

from __future__ import annotations

import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from alembic.script import ScriptDirectory
from moto.server import ThreadedMotoServer

from app.migrate import BACKUP_COMMAND, MIGRATIONS_DIR, MigrationError, alembic_config, migrate
from app.settings import AppSettings
from opsd.database import alembic_revision
from opsd.settings import Settings, load_settings
from tests.conftest import create_app_database

ROOT = Path(__file__).resolve().parents[2]
HEAD = ScriptDirectory.from_config(alembic_config()).get_current_head()
ALL_REVISIONS = [
    r.revision
    for r in reversed(list(ScriptDirectory.from_config(alembic_config()).walk_revisions()))
]
EXTRA = "9999_sha256_index"
SECOND_MIGRATION = f'''"""index drawings by content hash"""

from alembic import op

revision = "{EXTRA}"
down_revision = "{HEAD}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_drawings_sha256", "drawings", ["sha256"])


def downgrade() -> None:
    op.drop_index("ix_drawings_sha256", "drawings")
'''


@pytest.fixture
def first_schema_db(settings: Settings) -> Path:
    """An app database with 200 analyses at the first revision: every later one is pending."""
    return create_app_database(settings.database_path, revision=ALL_REVISIONS[0])


@pytest.fixture
def newer_migrations(tmp_path: Path) -> Path:
    """The package's migrations plus one more: an existing database has one pending."""
    folder = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, folder, ignore=shutil.ignore_patterns("__pycache__"))
    (folder / "versions" / "0002_sha256_index.py").write_text(SECOND_MIGRATION)
    return folder


def recording_backup(tmp_path: Path, exit_code: int = 0) -> tuple[list[str], Path]:
    """A stand-in backup command that notes each run in a file."""
    marker = tmp_path / "backups-taken"
    script = (
        "import pathlib, sys; "
        f"p = pathlib.Path({str(marker)!r}); p.write_text(p.read_text() + 'x' if p.exists() "
        f"else 'x'); print('backup: bucket unreachable', file=sys.stderr); sys.exit({exit_code})"
    )
    return [sys.executable, "-c", script], marker


def backups_taken(marker: Path) -> int:
    return len(marker.read_text()) if marker.exists() else 0


def revision(path: Path) -> str | None:
    with sqlite3.connect(path) as conn:
        return alembic_revision(conn)


def app_settings_for(path: Path) -> AppSettings:
    return load_settings(AppSettings, database_path=path)


def test_a_fresh_install_is_migrated_without_a_backup(tmp_path: Path) -> None:
    command, marker = recording_backup(tmp_path)
    settings = app_settings_for(tmp_path / "new" / "app.db")

    outcome = migrate(settings, backup_command=command)

    assert outcome.fresh_install and not outcome.backed_up
    assert outcome.applied == ALL_REVISIONS
    assert backups_taken(marker) == 0
    assert revision(settings.database_path) == HEAD


def test_nothing_pending_means_no_backup(tmp_path: Path, app_db: Path) -> None:
    command, marker = recording_backup(tmp_path)
    migrate(app_settings_for(app_db), backup_command=None)

    outcome = migrate(app_settings_for(app_db), backup_command=command)

    assert outcome.applied == [] and not outcome.backed_up
    assert outcome.describe() == "database schema is up to date"
    assert backups_taken(marker) == 0


def test_a_pending_migration_runs_after_a_backup(
    tmp_path: Path, first_schema_db: Path, newer_migrations: Path
) -> None:
    command, marker = recording_backup(tmp_path)

    outcome = migrate(app_settings_for(first_schema_db), command, migrations_dir=newer_migrations)

    assert outcome.backed_up and outcome.applied == [*ALL_REVISIONS[1:], EXTRA]
    assert backups_taken(marker) == 1
    assert revision(first_schema_db) == EXTRA
    with sqlite3.connect(first_schema_db) as conn:
        assert conn.execute("SELECT count(*) FROM analyses").fetchone()[0] == 200
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"


def test_a_failed_backup_stops_the_migration_with_its_reason(
    tmp_path: Path, first_schema_db: Path, newer_migrations: Path
) -> None:
    command, marker = recording_backup(tmp_path, exit_code=1)
    before = first_schema_db.read_bytes()

    with pytest.raises(MigrationError) as failure:
        migrate(app_settings_for(first_schema_db), command, migrations_dir=newer_migrations)

    assert str(failure.value) == (
        "pre-migration backup failed (exit 1): backup: bucket unreachable; nothing migrated"
    )
    assert backups_taken(marker) == 1
    assert revision(first_schema_db) == "0001_initial"
    assert first_schema_db.read_bytes() == before


def test_the_migrate_command_reports_in_one_line_and_exits_1_when_the_backup_fails(
    tmp_path: Path,
) -> None:
    """A database from before Alembic (tables, no revision) is pending; the real backup task
    cannot reach its endpoint, so nothing is migrated."""
    path = tmp_path / "legacy.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)")
    env = _cli_env(tmp_path, path, endpoint="http://127.0.0.1:9")

    done = subprocess.run(
        [sys.executable, "-m", "app", "migrate"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("migrate: pre-migration backup failed (exit 1): ")
    assert last.endswith("nothing migrated")
    assert revision(path) is None


def _cli_env(tmp_path: Path, database: Path, endpoint: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_MAX_ATTEMPTS="1",
        DATABASE_PATH=str(database),
        OPS_STATE_PATH=str(tmp_path / "ops-state.db"),
        SCRATCH_DIR=str(tmp_path / "scratch"),
        ENABLE_METRICS="false",
        LOG_FORMAT="json",
        PYTHONPATH=str(ROOT),
    )
    return env


@pytest.fixture
def moto_endpoint() -> Iterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"))
    yield url
    server.stop()


@pytest.mark.slow
def test_the_real_backup_task_takes_a_pre_migration_backup_before_migrating(
    tmp_path: Path,
    first_schema_db: Path,
    newer_migrations: Path,
    moto_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in _cli_env(tmp_path, first_schema_db, moto_endpoint).items():
        monkeypatch.setenv(name, value)
    settings = load_settings(AppSettings)
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    s3.create_bucket(Bucket=settings.s3_bucket_backups)

    outcome = migrate(settings, BACKUP_COMMAND, migrations_dir=newer_migrations)

    assert outcome.backed_up and outcome.applied == [*ALL_REVISIONS[1:], EXTRA]
    objects = s3.list_objects_v2(Bucket=settings.s3_bucket_backups).get("Contents", [])
    assert len(objects) == 1 and objects[0]["Key"].startswith("backup-")
    metadata = s3.head_object(Bucket=settings.s3_bucket_backups, Key=objects[0]["Key"])
    assert metadata["Metadata"]["reason"] == "pre-migration"
    assert revision(first_schema_db) == EXTRA
    backup_copy = tmp_path / "restored.db"
    backup_copy.write_bytes(
        s3.get_object(Bucket=settings.s3_bucket_backups, Key=objects[0]["Key"])["Body"].read()
    )
    assert revision(backup_copy) == "0001_initial"


def test_existing_analyses_get_distinct_unguessable_public_ids_and_keep_their_rows(
    first_schema_db: Path,
) -> None:
    with sqlite3.connect(first_schema_db) as conn:
        cursor = conn.execute("SELECT * FROM analyses ORDER BY id")
        before = cursor.fetchall()
        columns = ", ".join(column[0] for column in cursor.description)
    assert before, "the fixture database has analyses"

    migrate(app_settings_for(first_schema_db), backup_command=None)

    with sqlite3.connect(first_schema_db) as conn:
        rows = conn.execute(f"SELECT {columns} FROM analyses ORDER BY id").fetchall()
        handles = [r[0] for r in conn.execute("SELECT public_id FROM analyses ORDER BY id")]
        indexes = conn.execute("PRAGMA index_list(analyses)").fetchall()
    assert rows == before
    assert len(set(handles)) == len(handles)
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{22}", handle) for handle in handles)
    assert any(index[1] == "ix_analyses_public_id" and index[2] == 1 for index in indexes)
    with sqlite3.connect(first_schema_db) as conn, pytest.raises(sqlite3.IntegrityError):
        conn.execute("UPDATE analyses SET public_id = ? WHERE id = 2", (handles[0],))

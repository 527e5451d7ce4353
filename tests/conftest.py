"""Fixtures shared by every test package: isolated settings, moto AWS, real SQLite files."""

from __future__ import annotations

import functools
import hashlib
import random
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from opsd.aws import AwsClients
from opsd.runner import TaskContext
from opsd.settings import Settings, load_settings
from tests.postgres_server import PostgresServer, postgres_server

_AWS_VARIABLES = (
    "AWS_ENDPOINT_URL",
    "AWS_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_CA_BUNDLE",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
)
_SETTINGS_VARIABLES = tuple(name.upper() for name in Settings.model_fields)


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test talks to real AWS or reads the developer's settings."""
    for name in (*_AWS_VARIABLES, *_SETTINGS_VARIABLES):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("DATABASE_PATH", str(tmp_path / "data" / "app.db"))
    monkeypatch.setenv("OPS_STATE_PATH", str(tmp_path / "data" / "ops-state.db"))
    monkeypatch.setenv("SCRATCH_DIR", str(tmp_path / "scratch"))
    (tmp_path / "scratch").mkdir()


@pytest.fixture
def settings() -> Settings:
    return load_settings()


@pytest.fixture
def aws(settings: Settings) -> Iterator[AwsClients]:
    """moto in-process, with the three buckets created (versioning on)."""
    with mock_aws():
        s3 = boto3.client("s3", region_name=settings.aws_default_region)
        for bucket in (
            settings.s3_bucket_drawings,
            settings.s3_bucket_models,
            settings.s3_bucket_backups,
        ):
            s3.create_bucket(Bucket=bucket)
            s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        yield AwsClients(settings)


@pytest.fixture
def make_ctx(settings: Settings, aws: AwsClients):  # type: ignore[no-untyped-def]
    contexts: list[TaskContext] = []

    def make(task: str, **overrides: object) -> TaskContext:
        ctx = TaskContext(settings=settings, clients=aws, task=task, **overrides)  # type: ignore[arg-type]
        contexts.append(ctx)
        return ctx

    yield make
    for ctx in contexts:
        ctx.close()


_TEMPLATES = tempfile.TemporaryDirectory(prefix="app-template-")


def app_schema_head() -> str:
    """The newest revision of the app's migrations: the schema of create_app_database."""
    from alembic.script import ScriptDirectory

    from app.migrate import alembic_config

    return str(ScriptDirectory.from_config(alembic_config()).get_current_head())


@functools.cache
def migrated_template(revision: str = "head") -> Path:
    """An empty app database at `revision` of the app's own migrations (the newest unless
    told), built once per session; each database a test needs starts as a copy of it."""
    from alembic import command

    from app.database import make_engine
    from app.migrate import alembic_config

    path = Path(_TEMPLATES.name) / f"app-{revision}.db"
    engine, config = make_engine(path, busy_timeout_ms=5000), alembic_config()
    try:
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, revision)
    finally:
        engine.dispose()
    return path


def create_app_database(
    path: Path, analyses: int = 200, seed: int = 7, revision: str = "head"
) -> Path:
    """A small app database as the app writes it: its migrations' schema (rollback-journal
    mode) at `revision`, `analyses` drawings each with its analysis."""
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(migrated_template(revision), path)
    rng = random.Random(seed)
    conn = sqlite3.connect(path)
    for i in range(1, analyses + 1):
        stamp = f"2026-11-{1 + i % 24:02d}T{i % 24:02d}:{i % 60:02d}:00+00:00"
        drawing = {
            "filename": f"drawing-{i}.png",
            "size_bytes": rng.randint(1000, 90000),
            "sha256": f"{i:064x}",
            "age_years": rng.randint(2, 18),
        }
        score = rng.random()
        add_analysis(
            conn,
            stamp,
            drawing,
            anomaly_score=score,
            is_anomaly=int(score > 0.9),
            normalised_score=score * 100,
            processing_time_ms=rng.uniform(20, 300),
        )
    conn.commit()
    conn.close()
    return path


def add_analysis(
    conn: sqlite3.Connection,
    created_at: str,
    drawing: Mapping[str, object] | None = None,
    **analysis: object,
) -> int:
    """One drawing and its analysis as the app records them (every NOT NULL column filled);
    `drawing` and `analysis` override the plain values. Returns the analysis id."""
    drawing_id = conn.execute("SELECT coalesce(max(id), 0) + 1 FROM drawings").fetchone()[0]
    storage_key = f"drawings/{drawing_id}.png"
    drawing_row = {"id": drawing_id, **_DRAWING, "storage_key": storage_key}
    _insert(conn, "drawings", {**drawing_row, "created_at": created_at, **(drawing or {})})
    row = {**_ANALYSIS, "drawing_id": drawing_id, "created_at": created_at, **analysis}
    if "public_id" in {column[1] for column in conn.execute("PRAGMA table_info(analyses)")}:
        row.setdefault("public_id", f"handle-{drawing_id}")  # from revision 0002 on
    return _insert(conn, "analyses", row)


_DRAWING = {
    "filename": "drawing.png",
    "content_type": "image/png",
    "size_bytes": 40_000,
    "sha256": "0" * 64,
    "age_years": 6,
    "subject": "house",
}
_ANALYSIS = {
    "model_version": "v1",
    "age_group": "5-7",
    "anomaly_score": 0.5,
    "threshold": 0.9,
    "is_anomaly": 0,
    "normalised_score": 50.0,
    "processing_time_ms": 100.0,
}


def _insert(conn: sqlite3.Connection, table: str, row: Mapping[str, object]) -> int:
    columns, marks = ", ".join(row), ", ".join("?" * len(row))
    cursor = conn.execute(f"INSERT INTO {table} ({columns}) VALUES ({marks})", list(row.values()))
    return int(cursor.lastrowid or 0)


@pytest.fixture
def app_db(settings: Settings) -> Path:
    return create_app_database(settings.database_path)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the session (tests/postgres_server.py)."""
    with postgres_server() as server:
        yield server


@pytest.fixture
def postgres_url(postgres: PostgresServer, request: pytest.FixtureRequest) -> str:
    """A fresh, empty database on the session's server."""
    name = "t_" + hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:16]
    return postgres.create_database(name)

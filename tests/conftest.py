"""Fixtures shared by every test package: isolated settings, moto AWS, real SQLite files."""

from __future__ import annotations

import hashlib
import random
import sqlite3
from collections.abc import Iterator
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


def create_app_database(path: Path, analyses: int = 200, seed: int = 7) -> Path:
    """A small app database with the shape the app writes (rollback-journal mode)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = DELETE")
    conn.executescript(
        """
        CREATE TABLE drawings (
            id INTEGER PRIMARY KEY, filename TEXT, content_type TEXT, size_bytes INTEGER,
            sha256 TEXT, age_years INTEGER, subject TEXT, storage_key TEXT, created_at TEXT);
        CREATE TABLE analyses (
            id INTEGER PRIMARY KEY, drawing_id INTEGER REFERENCES drawings(id),
            created_at TEXT, model_version TEXT, age_group TEXT, anomaly_score REAL,
            threshold REAL, is_anomaly INTEGER, normalised_score REAL, processing_time_ms REAL);
        CREATE INDEX ix_analyses_created_at ON analyses (created_at);
        CREATE TABLE alembic_version (version_num TEXT PRIMARY KEY);
        INSERT INTO alembic_version VALUES ('0001_initial');
        PRAGMA user_version = 1;
        """
    )
    for i in range(1, analyses + 1):
        stamp = f"2026-11-{1 + i % 24:02d}T{i % 24:02d}:{i % 60:02d}:00+00:00"
        conn.execute(
            "INSERT INTO drawings VALUES (?, ?, 'image/png', ?, ?, ?, 'house', ?, ?)",
            (
                i,
                f"drawing-{i}.png",
                rng.randint(1000, 90000),
                f"{i:064x}",
                rng.randint(2, 18),
                f"drawings/{i}.png",
                stamp,
            ),
        )
        score = rng.random()
        conn.execute(
            "INSERT INTO analyses VALUES (?, ?, ?, 'v1', '5-7', ?, 0.9, ?, ?, ?)",
            (i, i, stamp, score, int(score > 0.9), score * 100, rng.uniform(20, 300)),
        )
    conn.commit()
    conn.close()
    return path


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

"""The app on a real PostgreSQL server (DATABASE_URL): the migrations, uploads, analyses, the
dashboard, the runtime configuration and /health (tests/postgres_server.py starts the server)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from alembic import command
from fastapi.testclient import TestClient

from app.copy_to_postgres import CopyError, copy_database
from app.copy_to_postgres import main as copy_main
from app.database import engine_for, make_engine
from app.migrate import MIGRATIONS_DIR, alembic_config, migrate
from app.records import NewAnalysis, NewDrawing, analysis_by_id, record_analysis
from app.settings import AppSettings
from opsd.settings import ConfigError, load_settings
from tests.app.helpers import ADMIN_PASSWORD, drawing_bytes, login
from tests.app.test_migrations import ALL_REVISIONS


def pg_settings(url: str) -> AppSettings:
    return load_settings(AppSettings, admin_password=ADMIN_PASSWORD, database_url=url)


def query(url: str, sql: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url.replace("+psycopg", "")) as conn:
        return conn.execute(sql).fetchall()


@pytest.mark.slow
def test_the_migrations_run_on_postgresql_and_give_existing_rows_handles(
    postgres_url: str,
) -> None:
    settings = pg_settings(postgres_url)
    engine = engine_for(settings)
    config = alembic_config(MIGRATIONS_DIR)
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0001_initial")
    query_rows = [
        "INSERT INTO drawings (filename, content_type, size_bytes, sha256, age_years, "
        "storage_key, created_at) VALUES ('a.png', 'image/png', 1, 'x', 7, 'drawings/a.png', "
        "'2026-12-01T10:00:00+00:00')",
        "INSERT INTO analyses (drawing_id, created_at, model_version, age_group, anomaly_score, "
        "threshold, is_anomaly, normalised_score, processing_time_ms) VALUES "
        "(1, '2026-12-01T10:00:00+00:00', 'v1', '5-7', 0.5, 0.9, false, 50, 12.5)",
    ]
    with psycopg.connect(postgres_url.replace("+psycopg", "")) as conn:
        for sql in query_rows:
            conn.execute(sql)
    engine.dispose()

    # The backup task does not apply to PostgreSQL: a command that would fail is not run.
    outcome = migrate(settings, backup_command=("false",))

    assert outcome.applied == ALL_REVISIONS[1:]
    assert not outcome.backed_up and not outcome.fresh_install
    assert "RDS automated backups" in outcome.describe()
    [(handle,)] = query(postgres_url, "SELECT public_id FROM analyses")
    assert isinstance(handle, str) and len(handle) == 22
    assert query(postgres_url, "SELECT version_num FROM alembic_version") == [(ALL_REVISIONS[-1],)]
    assert migrate(settings).applied == []

    # Down and up again: every step is dialect-neutral.
    engine = engine_for(settings)
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "base")
    engine.dispose()
    assert query(postgres_url, "SELECT count(*) FROM alembic_version") == [(0,)]
    assert migrate(settings).applied == ALL_REVISIONS


@pytest.mark.slow
def test_uploads_analyses_dashboard_and_config_run_on_postgresql(
    postgres_url: str, make_client: Callable[..., TestClient]
) -> None:
    settings = pg_settings(postgres_url)
    assert migrate(settings, backup_command=None).fresh_install
    client = make_client(settings)
    client.headers["X-CSRF-Token"] = login(client)

    created = []
    for age, anomalous in ((4, False), (10, True), (16, False)):
        files = {"file": ("d.png", drawing_bytes(age=age, anomalous=anomalous), "image/png")}
        response = client.post("/api/v1/drawings", files=files, data={"age": str(age)})
        assert response.status_code == 201, response.text
        created.append(response.json())

    assert client.get(f"/api/v1/analyses/{created[1]['public_id']}").json() == created[1]
    rows = query(postgres_url, "SELECT count(*), sum(CASE WHEN is_anomaly THEN 1 ELSE 0 END) "
                 "FROM analyses")  # fmt: skip
    assert rows == [(3, sum(a["is_anomaly"] for a in created))]
    page = client.get("/dashboard").text
    assert '<span class="stat-value" id="stat-total">3</span>' in page
    assert "2-4 years" in page and "14-18 years" in page
    assert page.count('<span class="badge') == 3

    assert client.put("/api/v1/config", json={"dashboard_recent_count": 2}).status_code == 200
    assert client.put("/api/v1/config", json={"dashboard_recent_count": 5}).status_code == 200
    assert client.get("/api/v1/config").json()["dashboard_recent_count"] == 5
    assert query(postgres_url, "SELECT value FROM app_config") == [("5",)]
    assert client.get("/health").json()["database"] == "ok"

    # Nothing went to the SQLite file at DATABASE_PATH.
    if settings.database_path.exists():
        with sqlite3.connect(settings.database_path) as conn:
            assert conn.execute("SELECT count(*) FROM analyses").fetchone()[0] == 0


@pytest.mark.slow
def test_health_is_503_when_the_postgresql_tables_are_gone(
    postgres_url: str, make_client: Callable[..., TestClient]
) -> None:
    settings = pg_settings(postgres_url)
    migrate(settings, backup_command=None)
    client = make_client(settings)
    with psycopg.connect(postgres_url.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute("DROP TABLE analyses")
    response = client.get("/health")
    assert response.status_code == 503
    assert response.json()["database"] == "unavailable"


@pytest.mark.parametrize(
    ("given", "sqlalchemy_url"),
    [
        ("postgres://u:secret@db:5432/app", "postgresql+psycopg://u:secret@db:5432/app"),
        ("postgresql://u@db/app", "postgresql+psycopg://u@db/app"),
    ],
)
def test_postgresql_urls_select_psycopg_and_hide_the_password(
    given: str, sqlalchemy_url: str
) -> None:
    settings = pg_settings(given)
    assert not settings.database_is_sqlite
    assert settings.sqlalchemy_url == sqlalchemy_url
    assert "secret" not in settings.database_name and "db" in settings.database_name


def test_an_sqlite_url_is_the_database_path_and_another_engine_is_refused() -> None:
    settings = pg_settings("sqlite:////srv/data/app.db")
    assert settings.database_is_sqlite and str(settings.database_path) == "/srv/data/app.db"
    with pytest.raises(ConfigError) as refused:
        pg_settings("mysql://root:hunter2@db/app")
    assert str(refused.value).startswith("DATABASE_URL: must be sqlite:///PATH or postgresql")
    assert "hunter2" not in str(refused.value)


@pytest.mark.slow
def test_the_sqlite_database_is_copied_whole_into_postgresql(
    postgres_url: str,
    app_settings: AppSettings,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    migrate(app_settings, backup_command=None)
    sqlite_engine = make_engine(app_settings.database_path, 1000)
    ids = [record_analysis(sqlite_engine, *sample_analysis(i)) for i in range(3)]
    sqlite_engine.dispose()
    settings = pg_settings(postgres_url)
    migrate(settings, backup_command=None)
    monkeypatch.setenv("DATABASE_URL", postgres_url)
    assert copy_main([str(app_settings.database_path)]) == 0
    assert "analyses: 3 rows" in capsys.readouterr().out
    # Copying twice would duplicate: refused, and nothing changes.
    assert copy_main([str(app_settings.database_path)]) == 2
    assert "is not empty: nothing copied" in capsys.readouterr().err

    engine = engine_for(settings)
    try:
        copied = [analysis_by_id(engine, i) for i in ids]
        originals = read_sqlite(app_settings.database_path, ids)
        assert len(originals) == 3 and copied == originals
        # The id sequences continue after the copied rows.
        assert record_analysis(engine, *sample_analysis(9)) == ids[-1] + 1
    finally:
        engine.dispose()


def test_a_copy_between_different_schemas_is_refused(
    postgres_url: str, app_settings: AppSettings
) -> None:
    migrate(app_settings, backup_command=None)
    source = make_engine(app_settings.database_path, 1000)
    target = engine_for(pg_settings(postgres_url))
    try:
        with pytest.raises(CopyError, match=rf"schemas differ \(SQLite at {ALL_REVISIONS[-1]}"):
            copy_database(source, target)
    finally:
        source.dispose()
        target.dispose()


def sample_analysis(i: int) -> tuple[NewDrawing, NewAnalysis]:
    drawing = NewDrawing(f"d{i}.png", "image/png", 100 + i, f"{i:064x}", 7, "house", f"k/{i}")
    analysis = NewAnalysis("v1", "5-7", 0.1 * i, 0.9, i == 2, 10.0 * i, 12.5)
    return drawing, analysis


def read_sqlite(path: Path, ids: list[int]) -> list[dict[str, object]]:
    engine = make_engine(path, 1000)
    try:
        return [record for i in ids if (record := analysis_by_id(engine, i))]
    finally:
        engine.dispose()

"""The operations tasks when DATABASE_URL names PostgreSQL: backup, restore and verify-backup
refuse in one line naming what takes their place; publish-metrics reads a real server."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from app.migrate import migrate
from app.settings import AppSettings
from opsd.aws import AwsClients
from opsd.results import Status, TaskError
from opsd.runner import TaskContext
from opsd.settings import load_settings
from tasks.publish_metrics import publish_metrics
from tests.task_processes import ROOT, free_port, task_env

NOW = datetime(2026, 11, 24, 6, 5, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("task", "takes_its_place"),
    [
        ("backup", "RDS automated backups"),
        ("restore", "RDS point-in-time restore"),
        ("verify-backup", "AWS Backup restore testing"),
    ],
)
def test_sqlite_only_tasks_refuse_postgresql_in_one_line(
    task: str, takes_its_place: str, tmp_path: Path
) -> None:
    env = task_env(
        "http://127.0.0.1:9", tmp_path, DATABASE_URL="postgresql://ops:s3cret@db.internal/app"
    )
    done = subprocess.run(
        [sys.executable, "-m", "tasks", task],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, done.stderr + done.stdout
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"{task}: {task} works on the SQLite file only"), last
    assert takes_its_place in last and "db.internal" in last
    assert "s3cret" not in done.stderr + done.stdout


def test_the_tasks_read_postgresql_without_sqlalchemy() -> None:
    probe = (
        "import sys, tasks.publish_metrics, tasks.backups.app_database; "
        "sys.exit('sqlalchemy' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", probe], cwd=ROOT, check=False).returncode == 0


def test_the_sqlite_only_tasks_never_load_psycopg() -> None:
    """They only refuse a PostgreSQL URL; loading psycopg for that cost each run 0.13 CPU s."""
    probe = (
        "import sys, tasks.backup, tasks.restore, tasks.verify_backup; "
        "sys.exit('psycopg' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", probe], cwd=ROOT, check=False).returncode == 0


@pytest.mark.slow
def test_publish_metrics_reads_analyses_and_size_from_postgresql(
    postgres_url: str, aws: AwsClients
) -> None:
    migrate(load_settings(AppSettings, database_url=postgres_url), backup_command=None)
    at_6_01 = datetime(2026, 11, 24, 6, 1, 10, tzinfo=UTC)
    at_6_03 = datetime(2026, 11, 24, 6, 3, 59, 900000, tzinfo=UTC)
    rows = [(at_6_01, False, 100.4), (at_6_01, True, 99.6), (at_6_01, False, 250.0)]
    rows += [(at_6_03, True, 40.0), (NOW, False, 10.0)]  # the running minute waits
    libpq = postgres_url.replace("+psycopg", "")
    with psycopg.connect(libpq) as conn:
        conn.execute(
            "INSERT INTO drawings (id, filename, content_type, size_bytes, sha256, age_years, "
            "storage_key, created_at) VALUES (1, 'a.png', 'image/png', 1, 'x', 7, 'k', 'now')"
        )
        for i, (at, anomaly, ms) in enumerate(rows):
            conn.execute(
                "INSERT INTO analyses (drawing_id, created_at, model_version, age_group, "
                "anomaly_score, threshold, is_anomaly, normalised_score, processing_time_ms, "
                "public_id) VALUES (1, %s, 'v1', '5-7', 0.5, 0.9, %s, 50, %s, %s)",
                (at.isoformat(), anomaly, ms, f"{i:022d}"),
            )
    settings = load_settings(database_url=postgres_url)
    ctx = TaskContext(settings=settings, clients=aws, task="publish-metrics")
    try:
        result = publish_metrics(ctx, NOW)
    finally:
        ctx.close()
    with psycopg.connect(libpq) as conn:
        size = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]

    assert result.status is Status.OK, result.message
    assert result.details["analyses"] == 4 and result.details["anomalies"] == 2
    assert points(aws, settings, "AnalysisCount", "Sum") == {"06:01": 3.0, "06:03": 1.0}
    assert points(aws, settings, "AnomalyCount", "Sum") == {"06:01": 1.0, "06:03": 1.0}
    assert points(aws, settings, "ProcessingTime", "Maximum") == {"06:01": 250.0, "06:03": 40.0}
    assert points(aws, settings, "DatabaseSizeBytes", "Maximum") == {"06:05": float(size)}


def test_publish_metrics_names_an_unreachable_server_without_its_password(
    aws: AwsClients,
) -> None:
    url = f"postgresql://ops:s3cret@127.0.0.1:{free_port()}/app"
    settings = load_settings(database_url=url)
    ctx = TaskContext(settings=settings, clients=aws, task="publish-metrics")
    try:
        with pytest.raises(TaskError) as failed:
            publish_metrics(ctx, NOW)
    finally:
        ctx.close()
    message = str(failed.value)
    assert message.startswith("read app database: PostgreSQL at 127.0.0.1:"), message
    assert "s3cret" not in message


def points(aws: AwsClients, settings: object, name: str, statistic: str) -> dict[str, float]:
    answer = aws("cloudwatch").get_metric_statistics(
        Namespace=settings.metrics_namespace,  # type: ignore[attr-defined]
        MetricName=name,
        Dimensions=[{"Name": "Environment", "Value": settings.environment}],  # type: ignore[attr-defined]
        StartTime=NOW - timedelta(hours=1),
        EndTime=NOW + timedelta(hours=1),
        Period=60,
        Statistics=[statistic],
    )
    return {
        p["Timestamp"].strftime("%H:%M"): p[statistic]
        for p in sorted(answer["Datapoints"], key=lambda p: p["Timestamp"])
    }

"""The operations panel tells the truth: each point at its own minute, the backup age as of the
moment the page is drawn, and "no recent backup" when publish-metrics finds none."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient

from app.operations_panel import PanelReading, PanelValue, read_panel
from app.settings import AppSettings
from opsd.aws import AwsClients
from tests.app.helpers import login

NOW = datetime(2026, 11, 24, 6, 9, 30, tzinfo=UTC)


def put(aws: AwsClients, settings: AppSettings, name: str, value: float, at: datetime) -> None:
    aws("cloudwatch").put_metric_data(
        Namespace=settings.metrics_namespace,
        MetricData=[
            {
                "MetricName": name,
                "Dimensions": [{"Name": "Environment", "Value": settings.environment}],
                "Timestamp": at,
                "Value": value,
            }
        ],
    )


def line(reading: PanelReading, metric: str) -> PanelValue:
    assert reading.error is None, reading.error
    return next(value for value in reading.values if value.metric == metric)


def test_each_point_is_shown_at_its_own_minute(aws: AwsClients, app_settings: AppSettings) -> None:
    put(
        aws,
        app_settings,
        "BudgetActualPercent",
        42.5,
        datetime(2026, 11, 24, 0, 39, 37, tzinfo=UTC),
    )

    budget = line(read_panel(app_settings, aws, NOW), "BudgetActualPercent")

    assert budget.value == 42.5
    assert budget.at == datetime(2026, 11, 24, 0, 39, tzinfo=UTC)


def test_the_backup_age_counts_to_the_moment_the_page_is_drawn(
    aws: AwsClients, app_settings: AppSettings
) -> None:
    run = datetime(2026, 11, 24, 6, 5, tzinfo=UTC)  # publish-metrics: backup of 06:00 is 300 s old
    put(aws, app_settings, "BackupAgeSeconds", 300, run)
    put(aws, app_settings, "DatabaseSizeBytes", 4096, run)

    age = line(read_panel(app_settings, aws, NOW), "BackupAgeSeconds")

    assert age.at == run
    assert age.current_value(NOW) == 570  # 06:09:30 − 06:00:00
    assert age.current_value(NOW + timedelta(minutes=5)) == 870  # a cached reading moves on


def test_a_backup_taken_after_the_last_publish_run_counts_from_itself(
    aws: AwsClients, app_settings: AppSettings
) -> None:
    run = datetime(2026, 11, 24, 6, 5, tzinfo=UTC)
    put(aws, app_settings, "BackupAgeSeconds", 6 * 3600, run)
    put(aws, app_settings, "DatabaseSizeBytes", 4096, run)
    put(aws, app_settings, "BackupSizeBytes", 4096, datetime(2026, 11, 24, 6, 8, 20, tzinfo=UTC))

    age = line(read_panel(app_settings, aws, NOW), "BackupAgeSeconds")

    assert age.current_value(NOW) == 90  # from 06:08, not 6 h from the 06:05 run


def test_no_backup_found_by_the_last_run_says_no_recent_backup(
    aws: AwsClients, app_settings: AppSettings
) -> None:
    yesterday = NOW - timedelta(hours=23)
    put(aws, app_settings, "BackupAgeSeconds", 33, yesterday)
    put(aws, app_settings, "DatabaseSizeBytes", 4096, yesterday)
    put(aws, app_settings, "DatabaseSizeBytes", 4096, NOW - timedelta(minutes=3))

    age = line(read_panel(app_settings, aws, NOW), "BackupAgeSeconds")

    assert age.current_value(NOW) is None
    assert age.note == "no recent backup: publish-metrics at 06:06 UTC found none to measure"


def test_the_dashboard_says_no_recent_backup_not_a_day_old_age(
    make_client, aws: AwsClients, app_settings: AppSettings
) -> None:
    admin_client: TestClient = make_client(
        app_settings.model_copy(update={"operations_panel_cache_seconds": 0})
    )
    login(admin_client)
    now = datetime.now(UTC)
    put(aws, app_settings, "BackupAgeSeconds", 33, now - timedelta(hours=23))
    put(aws, app_settings, "DatabaseSizeBytes", 4096, now - timedelta(hours=23))
    put(aws, app_settings, "DatabaseSizeBytes", 4096, now - timedelta(minutes=2))

    page = admin_client.get("/dashboard").text

    assert "no recent backup: publish-metrics at" in page
    assert "33 s" not in page


def test_a_budget_just_under_80_percent_is_not_shown_as_80(
    make_client, aws: AwsClients, app_settings: AppSettings
) -> None:
    admin_client: TestClient = make_client(
        app_settings.model_copy(update={"operations_panel_cache_seconds": 0})
    )
    login(admin_client)
    put(aws, app_settings, "BudgetActualPercent", 79.9975, datetime.now(UTC) - timedelta(hours=1))

    page = admin_client.get("/dashboard").text

    assert "79.9 %" in page and "80.0 %" not in page

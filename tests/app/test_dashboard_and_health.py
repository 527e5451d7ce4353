"""The dashboard (analyses, operations panel from CloudWatch), the config API and /health."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

import pytest
from botocore.exceptions import ClientError
from fastapi.testclient import TestClient

from app import operations_panel
from app.admin_password import AdminPassword, AdminUnavailable, password_from_secret_string
from app.settings import AppSettings
from opsd.aws import AwsClients
from opsd.settings import load_settings
from tests.app.helpers import ADMIN_PASSWORD, drawing_bytes, login


def put_metric(
    aws: AwsClients,
    settings: AppSettings,
    name: str,
    value: float,
    ago_s: int = 60,
    at: datetime | None = None,
):
    aws("cloudwatch").put_metric_data(
        Namespace=settings.metrics_namespace,
        MetricData=[
            {
                "MetricName": name,
                "Dimensions": [{"Name": "Environment", "Value": settings.environment}],
                "Timestamp": at or datetime.now(UTC) - timedelta(seconds=ago_s),
                "Value": value,
            }
        ],
    )


def test_the_dashboard_shows_real_counts_and_the_recent_analyses(
    admin_client: TestClient,
) -> None:
    for age, anomalous in ((4, False), (10, True), (16, False)):
        files = {"file": ("d.png", drawing_bytes(age=age, anomalous=anomalous), "image/png")}
        response = admin_client.post("/api/v1/drawings", files=files, data={"age": str(age)})
        assert response.status_code == 201

    page = admin_client.get("/dashboard").text

    assert '<span class="stat-value" id="stat-total">3</span>' in page
    assert "2-4 years" in page and "8-10 years" in page and "14-18 years" in page
    assert page.count('<span class="badge') == 3
    assert 'id="panel-operations"' in page and 'id="config-form"' in page


def test_the_operations_panel_reads_the_published_metrics(
    make_client, aws: AwsClients, app_settings: AppSettings
) -> None:
    admin_client = make_client(
        app_settings.model_copy(update={"operations_panel_cache_seconds": 0})
    )
    login(admin_client)
    # 3 h 10 min old at the start of this minute. The point comes back at its minute, and the
    # page counts the age from there to its drawing, which may fall in a later minute.
    minute = datetime.now(UTC).replace(second=0, microsecond=0)
    put_metric(aws, app_settings, "BackupAgeSeconds", 3 * 3600 + 600, at=minute)
    put_metric(aws, app_settings, "BudgetActualPercent", 42.5)
    put_metric(aws, app_settings, "RestoreDrillSucceeded", 1, ago_s=7200)
    put_metric(aws, app_settings, "RestoreDrillSucceeded", 1, ago_s=600)
    put_metric(aws, app_settings, "LifecycleViolations", 0)

    asked = datetime.now(UTC)
    page = admin_client.get("/dashboard").text
    answered = datetime.now(UTC)

    shown = {f"3 h {10 + (t - minute) // timedelta(minutes=1)} min" for t in (asked, answered)}
    assert any(age in page for age in shown), shown
    assert "42.5 %" in page
    assert "<td>2</td>" in page.replace('<td class="">', "<td>")
    assert "no data yet" in page  # budget forecast, drill failures, backup size: none yet


def test_a_cloudwatch_failure_is_shown_in_the_panel_not_raised(
    make_client, app_settings: AppSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin_client = make_client(
        app_settings.model_copy(update={"operations_panel_cache_seconds": 0})
    )
    login(admin_client)

    def denied(*_args: object, **_kwargs: object) -> None:
        error = {"Error": {"Code": "AccessDenied", "Message": "not allowed"}}
        raise ClientError(error, "GetMetricData")

    monkeypatch.setattr(operations_panel, "read_panel", _failing_reader(denied))

    page = admin_client.get("/dashboard")

    assert page.status_code == 200
    assert "Metrics unavailable: read metrics from CloudWatch: AccessDenied (not allowed)" in (
        page.text
    )


def _failing_reader(fail):  # type: ignore[no-untyped-def]
    original = operations_panel.read_panel

    def reader(settings, clients, now=None):  # type: ignore[no-untyped-def]
        class FailingClients:
            def __call__(self, _service: str) -> object:
                return type("CW", (), {"get_metric_data": staticmethod(fail)})()

        return original(settings, FailingClients(), now)

    return reader


def test_config_changes_are_validated_and_kept(admin_client: TestClient) -> None:
    assert admin_client.get("/api/v1/config").json() == {
        "threshold_percentile": 95.0,
        "dashboard_recent_count": 20,
    }
    for bad, words in (
        ({"threshold_percentile": 20}, "threshold_percentile: Input should be greater"),
        ({"threshold_percentile": "high"}, "threshold_percentile: Input should be a valid"),
        ({"colour": "red"}, "colour: Extra inputs are not permitted"),
    ):
        refused = admin_client.put("/api/v1/config", json=bad)
        assert refused.status_code == 422 and refused.json()["detail"].startswith(words)
    changed = admin_client.put("/api/v1/config", json={"dashboard_recent_count": 5})
    assert changed.json() == {"threshold_percentile": 95.0, "dashboard_recent_count": 5}
    assert admin_client.get("/api/v1/config").json()["dashboard_recent_count"] == 5


def test_health_reports_the_database_and_the_model(client: TestClient) -> None:
    body = client.get("/health").json()
    assert body["status"] == "ok" and body["database"] == "ok"
    assert body["model_source"] == "s3" and body["model_version"].startswith("test-")


def test_health_is_503_when_the_database_is_gone_and_logs_why_without_telling_the_public(
    client: TestClient, app_settings: AppSettings, capsys: pytest.CaptureFixture[str]
) -> None:
    with sqlite3.connect(app_settings.database_path) as conn:
        conn.execute("DROP TABLE analyses")
    response = client.get("/health")
    assert response.status_code == 503
    assert response.json()["database"] == "unavailable"
    assert "no such table: analyses" in capsys.readouterr().out


def test_without_a_model_in_the_bucket_the_packaged_model_serves(
    make_client, app_settings: AppSettings
) -> None:
    client = make_client(app_settings, upload_model=False)
    assert client.get("/health").json()["model_source"] == "packaged"
    files = {"file": ("d.png", drawing_bytes(age=5), "image/png")}
    assert client.post("/api/v1/drawings", files=files, data={"age": "5"}).status_code == 201


def test_the_admin_password_is_read_from_secrets_manager(make_client, aws: AwsClients) -> None:
    arn = aws("secretsmanager").create_secret(
        Name="drawing-analysis/admin", SecretString='{"password": "from the vault"}'
    )["ARN"]
    settings = load_settings(
        AppSettings, enable_secrets_manager=True, admin_password_secret_arn=arn
    )
    client = make_client(settings)

    assert client.post("/login", data={"password": ADMIN_PASSWORD}).status_code == 401
    login(client, "from the vault")
    assert client.get("/api/v1/config").status_code == 200


def test_an_unreadable_secret_makes_login_503_not_open_and_names_no_secret(
    make_client, aws: AwsClients, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = load_settings(
        AppSettings,
        enable_secrets_manager=True,
        admin_password_secret_arn="arn:aws:secretsmanager:us-east-1:123456789012:secret:nope",
    )
    client = make_client(settings)
    response = client.post("/login", data={"password": "anything"})
    assert response.status_code == 503
    assert response.json()["detail"] == "admin login is unavailable right now; try again later"
    assert "read admin password secret: ResourceNotFoundException" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("secret", "password"),
    [("plain-password", "plain-password"), ('{"admin_password": "p2"}', "p2")],
)
def test_a_secret_holds_the_password_or_a_json_object(secret: str, password: str) -> None:
    assert password_from_secret_string(secret) == password


def test_a_secret_without_a_password_is_refused() -> None:
    with pytest.raises(AdminUnavailable, match="no 'password' field"):
        password_from_secret_string('{"user": "admin"}')


def test_outside_local_mode_a_password_source_is_required(monkeypatch: pytest.MonkeyPatch) -> None:
    from opsd.settings import ConfigError

    for bucket in ("S3_BUCKET_DRAWINGS", "S3_BUCKET_MODELS", "S3_BUCKET_BACKUPS"):
        monkeypatch.setenv(bucket, "b-" + bucket.lower().replace("_", "-"))
    with pytest.raises(ConfigError, match="ADMIN_PASSWORD must be set outside local mode"):
        load_settings(AppSettings, environment="production")


def test_a_generated_local_password_is_printed_once_and_never_logged(
    capsys: pytest.CaptureFixture[str], aws: AwsClients
) -> None:
    from app.admin_password import with_local_password

    settings = with_local_password(load_settings(AppSettings))
    password = AdminPassword(settings, aws).current()
    printed = capsys.readouterr().err
    assert printed.count(password) == 1
    import structlog

    structlog.get_logger().info("oops", value=f"the password is {password}")
    assert password not in capsys.readouterr().out

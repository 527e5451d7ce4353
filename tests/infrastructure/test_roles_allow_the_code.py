"""The code's AWS calls, made as the template's roles: what the app and the tasks do in
production must be allowed by the role their task definition gives them."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from app import analysis
from app.settings import AppSettings
from opsd import storage_policy as policy
from opsd.aws import AwsClients
from opsd.settings import Settings
from tasks.storage.compliance import VIOLATION, check_everything, fix
from tests.app.conftest import (  # noqa: F401 (fixtures)
    _no_app_settings_from_the_developer,
    app_settings,
    make_client,
    migrated_database,
    test_model,
)
from tests.app.helpers import bucket_keys, drawing_bytes
from tests.infrastructure.role_enforcement import Role, acting_as, iam_request


def test_iam_request_names_the_version_actions() -> None:
    assert iam_request("s3", "DeleteObject", {"Bucket": "b", "Key": "k", "VersionId": "v"}) == (
        "s3:DeleteObjectVersion",
        "arn:aws:s3:::b/k",
    )
    assert iam_request("s3", "DeleteObject", {"Bucket": "b", "Key": "k"})[0] == "s3:DeleteObject"
    assert iam_request("s3", "ListObjectVersions", {"Bucket": "b"}) == (
        "s3:ListBucketVersions",
        "arn:aws:s3:::b",
    )


def test_a_failed_analysis_removes_its_drawing_as_the_app_role(
    make_client: Callable[..., TestClient],  # noqa: F811
    aws: AwsClients,
    app_settings: AppSettings,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = make_client(app_settings, raise_server_exceptions=False)

    def explode(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("database failed")

    monkeypatch.setattr(analysis, "record_analysis", explode)
    with acting_as(Role("AppTaskRole", app_settings), monkeypatch) as used:
        response = client.post(
            "/api/v1/drawings",
            files={"file": ("house.png", drawing_bytes(), "image/png")},
            data={"age": "7"},
        )
    assert response.status_code == 500
    assert "s3:DeleteObjectVersion" in used, used
    assert bucket_keys(aws, app_settings.s3_bucket_drawings) == [], "an orphan drawing is left"


def test_an_upload_succeeds_as_the_app_role(
    make_client: Callable[..., TestClient],  # noqa: F811
    aws: AwsClients,
    app_settings: AppSettings,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = make_client(app_settings)
    with acting_as(Role("AppTaskRole", app_settings), monkeypatch):
        response = client.post(
            "/api/v1/drawings",
            files={"file": ("house.png", drawing_bytes(), "image/png")},
            data={"age": "7"},
        )
    assert response.status_code == 201, response.text
    assert len(bucket_keys(aws, app_settings.s3_bucket_drawings)) == 1


def test_lifecycle_check_fixes_log_retention_as_the_tasks_role(
    aws: AwsClients, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The stack creates both log groups; someone shortened one's retention by hand.
    logs = aws("logs")
    for name in policy.log_group_names(settings):
        logs.create_log_group(logGroupName=name)
        logs.put_retention_policy(logGroupName=name, retentionInDays=policy.LOG_RETENTION_DAYS)
    first = policy.log_group_names(settings)[0]
    logs.put_retention_policy(logGroupName=first, retentionInDays=7)

    with acting_as(Role("TasksTaskRole", settings), monkeypatch) as used:
        findings = [f for f in check_everything(aws("s3"), logs, settings) if f.kind == "log-group"]
        (wrong,) = [f for f in findings if f.status == VIOLATION]
        done = fix(wrong, aws("s3"), logs, settings)

    assert done == f"{first}: retention set to {policy.LOG_RETENTION_DAYS} days"
    assert "logs:CreateLogGroup" not in used
    (group,) = logs.describe_log_groups(logGroupNamePrefix=first)["logGroups"]
    assert group["retentionInDays"] == policy.LOG_RETENTION_DAYS


def test_a_missing_log_group_is_still_created_where_that_is_allowed(aws: AwsClients) -> None:
    done = policy.apply_log_retention(aws("logs"), "/ecs/drawing-analysis-local/app")
    assert done.endswith("(created): retention set to 30 days")

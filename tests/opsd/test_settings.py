import pytest

from opsd.settings import ConfigError, Settings, load_settings


def test_local_mode_needs_no_bucket_names(settings: Settings) -> None:
    assert settings.is_local
    assert settings.s3_bucket_backups == "drawing-analysis-backups-local"
    assert settings.metrics_namespace == "DrawingAnalysis"
    assert settings.budget_limit_usd == 40


def test_production_without_buckets_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    with pytest.raises(ConfigError, match="^S3_BUCKET_DRAWINGS must be set outside local mode"):
        load_settings()


def test_invalid_number_names_variable_and_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BUDGET_LIMIT_USD", "forty")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.startswith("BUDGET_LIMIT_USD:") and "'forty'" in message
    assert "\n" not in message


def test_negative_budget_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BUDGET_LIMIT_USD", "-1")
    with pytest.raises(ConfigError, match="BUDGET_LIMIT_USD: Input should be greater than 0"):
        load_settings()


def test_secrets_manager_requires_the_arn(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENABLE_SECRETS_MANAGER", "true")
    with pytest.raises(ConfigError, match="ADMIN_PASSWORD_SECRET_ARN must be set"):
        load_settings()


def test_bad_region_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "moon")
    with pytest.raises(ConfigError, match="^AWS_DEFAULT_REGION:"):
        load_settings()

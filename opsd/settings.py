"""Settings of every process, from environment variables (ARCHITECTURE §7)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

LOCAL = "local"
# BACKUP_PREFIX: empty, or folder names each followed by a slash; the template's BackupPrefix
# parameter allows the same shape (its lifecycle rules must cover exactly what backups write).
BACKUP_PREFIX_SHAPE = r"([A-Za-z0-9!_.*'()-]+/)*"
BACKUP_PREFIX_MAX_LENGTH = 200
POSTGRES_SCHEMES = ("postgresql+psycopg", "postgresql", "postgres")
# Settings whose value may carry a password: a bad one is never repeated in the error.
UNSHOWN_VALUES = ("DATABASE_URL", "ADMIN_PASSWORD", "SESSION_SECRET")


class ConfigError(Exception):
    """A setting is missing or invalid; the message names the variable."""


class Settings(BaseSettings):
    """What the operations tasks (and the daemon) read. The app extends it."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore")

    environment: str = Field(LOCAL, pattern=r"^[a-z][a-z0-9-]{1,31}$")
    aws_default_region: str = Field("us-east-1", pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")
    aws_endpoint_url: str | None = None
    local_aws_port: int = Field(4566, ge=1, le=65535)

    s3_bucket_drawings: str = ""
    s3_bucket_models: str = ""
    s3_bucket_backups: str = ""
    backup_prefix: str = ""
    # At 0.25 vCPU, two 16 MB parts at a time cost a fifth less CPU than four of 8 MB (fewer
    # requests, less switching), in the same memory (benchmarks/RESULTS.md, issue 15).
    backup_part_size_mb: int = Field(16, ge=5, le=5120)
    backup_upload_concurrency: int = Field(2, ge=1, le=16)
    backup_glacier_days: int = Field(90, ge=1, le=3650)
    # Glacier bills at least 90 days, so expiry comes at least 90 days after the move.
    backup_expiry_days: int = Field(365, ge=91, le=36500)
    model_version_expiry_days: int = Field(90, ge=1, le=3650)

    database_path: Path = Path("data/app.db")
    # Unset or sqlite:///PATH: the SQLite file (at DATABASE_PATH). postgresql+psycopg://...:
    # PostgreSQL (several app tasks behind the load balancer; docs/CAPACITY.md).
    database_url: SecretStr | None = None
    ops_state_path: Path = Path("data/ops-state.db")
    scratch_dir: Path | None = None
    sqlite_busy_timeout_ms: int = Field(30_000, ge=0, le=600_000)

    enable_metrics: bool = True
    metrics_namespace: str = Field("DrawingAnalysis", min_length=1, max_length=255)

    enable_secrets_manager: bool = False
    admin_password_secret_arn: str | None = None

    budget_name: str = "drawing-analysis-monthly"
    budget_limit_usd: float = Field(40.0, gt=0)
    alert_topic_arn: str | None = None

    ecs_cluster: str | None = None
    ecs_app_service: str | None = None
    ecs_wait_timeout_s: int = Field(600, ge=10, le=3600)

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["auto", "json", "console"] = "auto"

    @field_validator("backup_prefix")
    @classmethod
    def _backup_prefix_shape(cls, value: str) -> str:
        """'db' is taken as 'db/' (what backup keys use); anything else is refused."""
        if value and not value.endswith("/"):
            value += "/"
        if len(value) > BACKUP_PREFIX_MAX_LENGTH or not re.fullmatch(BACKUP_PREFIX_SHAPE, value):
            raise ValueError(
                "must be empty or folder names each followed by a slash, e.g. db/ (letters, "
                f"digits and !_.*'()- only, at most {BACKUP_PREFIX_MAX_LENGTH} characters)"
            )
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url_shape(cls, value: SecretStr | None) -> SecretStr | None:
        url = value.get_secret_value().strip() if value is not None else ""
        if not url:
            return None
        scheme, _, rest = url.partition("://")
        if scheme == "sqlite" and rest.startswith("/") and len(rest) > 1:
            return SecretStr(url)
        if scheme in POSTGRES_SCHEMES and rest:
            return SecretStr(f"postgresql+psycopg://{rest}")
        raise ValueError(
            "must be sqlite:///PATH or postgresql+psycopg://USER:PASSWORD@HOST:PORT/DATABASE"
        )

    @property
    def database_is_sqlite(self) -> bool:
        return self.database_url is None

    @property
    def sqlalchemy_url(self) -> str:
        if self.database_url is None:
            return f"sqlite:///{self.database_path}"
        return self.database_url.get_secret_value()

    @property
    def libpq_url(self) -> str:
        """The PostgreSQL URL as libpq (psycopg.connect) takes it."""
        return self.sqlalchemy_url.replace("postgresql+psycopg://", "postgresql://", 1)

    @property
    def database_name(self) -> str:
        """The database for messages: the SQLite file, or the server without the password."""
        if self.database_url is None:
            return str(self.database_path)
        where = self.sqlalchemy_url.partition("://")[2].rpartition("@")[2]
        return f"PostgreSQL at {where}"

    @property
    def is_local(self) -> bool:
        return self.environment == LOCAL

    @model_validator(mode="after")
    def _buckets_named(self) -> Settings:
        if self.database_url is not None and self.sqlalchemy_url.startswith("sqlite:///"):
            self.database_path = Path(self.sqlalchemy_url.removeprefix("sqlite:///"))
            self.database_url = None
        for field in ("s3_bucket_drawings", "s3_bucket_models", "s3_bucket_backups"):
            if getattr(self, field):
                continue
            if not self.is_local:
                raise ValueError(f"{field.upper()} must be set outside local mode")
            setattr(self, field, f"drawing-analysis-{field.removeprefix('s3_bucket_')}-local")
        if self.backup_expiry_days < self.backup_glacier_days + 90:
            raise ValueError(
                "BACKUP_EXPIRY_DAYS must be at least BACKUP_GLACIER_DAYS + 90 "
                "(Glacier's 90-day minimum storage)"
            )
        if self.enable_secrets_manager and not self.admin_password_secret_arn:
            raise ValueError(
                "ADMIN_PASSWORD_SECRET_ARN must be set when ENABLE_SECRETS_MANAGER is true"
            )
        return self

    def secret_values(self) -> list[str]:
        """Values that must never reach a log line."""
        return [
            value.get_secret_value()
            for value in self.__dict__.values()
            if isinstance(value, SecretStr) and value.get_secret_value()
        ]


SettingsT = TypeVar("SettingsT", bound=Settings)


def load_settings(cls: type[SettingsT] = Settings, **overrides: object) -> SettingsT:  # type: ignore[assignment]
    """Read settings from the environment; raise ConfigError with one line on a bad value."""
    try:
        return cls(**overrides)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc)) from None


def describe_validation_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    location = [str(part) for part in first.get("loc", ()) if part]
    message = first.get("msg", "invalid value").removeprefix("Value error, ")
    if not location:
        return message
    variable = location[0].upper()
    given = first.get("input")
    hidden = isinstance(given, dict) or given is None or variable in UNSHOWN_VALUES
    shown = "" if hidden else f" (got {given!r})"
    return f"{variable}: {message}{shown}"

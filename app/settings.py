"""Settings of the inference app: the shared settings plus what only the app reads."""

from __future__ import annotations

from pydantic import Field, SecretStr, model_validator

from opsd.settings import Settings


class AppSettings(Settings):
    """Environment variables = upper-case field names (ADMIN_PASSWORD, SESSION_SECRET, …)."""

    admin_password: SecretStr | None = None
    # Signs the admin session cookie. Unset: derived from the admin password, so every worker
    # agrees and changing the password ends every session.
    session_secret: SecretStr | None = None
    session_idle_minutes: int = Field(30, ge=1, le=24 * 60)
    session_max_hours: int = Field(12, ge=1, le=24 * 7)
    login_max_failures: int = Field(5, ge=1, le=1000)
    login_window_seconds: int = Field(300, ge=1, le=86_400)
    # Failed logins from browsers that never logged in, whatever their addresses: the cap on
    # guessing. A browser that logged in before (device cookie) is not held by it.
    login_account_max_failures: int = Field(20, ge=1, le=100_000)
    login_device_days: int = Field(90, ge=1, le=400)
    # Proxies in front of the app that each append one X-Forwarded-For entry (production:
    # CloudFront, then the load balancer = 2); the client is the entry the farthest one
    # wrote. 0: the peer of the TCP connection, X-Forwarded-For ignored.
    trusted_proxy_hops: int = Field(0, ge=0, le=10)
    admin_password_cache_seconds: int = Field(300, ge=0, le=86_400)

    threshold_percentile: float = Field(95.0, ge=50.0, le=99.9)
    max_upload_mb: float = Field(10.0, gt=0, le=100)
    min_image_side: int = Field(32, ge=1, le=4096)
    max_image_pixels: int = Field(4096 * 4096, ge=1024)
    analysis_concurrency: int = Field(2, ge=1, le=64)
    # Uploads being received or waiting for an analysis slot (their bodies spool to disk);
    # one more gets 503 with Retry-After at once, as does one that waited `upload_wait_seconds`.
    upload_queue_limit: int = Field(32, ge=1, le=1000)
    upload_wait_seconds: float = Field(20.0, gt=0, le=600)
    request_body_seconds: float = Field(30.0, gt=0, le=3600)
    dashboard_recent_count: int = Field(20, ge=1, le=500)
    operations_panel_cache_seconds: float = Field(60.0, ge=0, le=3600)

    app_host: str = "127.0.0.1"
    app_port: int = Field(8000, ge=1, le=65535)

    @model_validator(mode="after")
    def _admin_password_source(self) -> AppSettings:
        if self.is_local or self.enable_secrets_manager or self.admin_password is not None:
            return self
        raise ValueError(
            "ADMIN_PASSWORD must be set outside local mode when ENABLE_SECRETS_MANAGER is false"
        )

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

"""The one place AWS clients are made (ARCHITECTURE §8): botocore's own, which boto3 would
only wrap at the price of importing it and s3transfer at every task's start."""

from __future__ import annotations

import threading
from typing import Any

from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.session import Session

from opsd.settings import Settings

# Cost Explorer and Budgets answer only in us-east-1.
GLOBAL_SERVICES = {"ce": "us-east-1", "budgets": "us-east-1"}
RETRIES = {"mode": "standard", "max_attempts": 5}


class AwsClients:
    """Lazily made, cached clients for one process's settings; `overrides` (timeouts,
    retries) are merged into the default client configuration."""

    def __init__(self, settings: Settings, overrides: Config | None = None) -> None:
        self._settings = settings
        self._overrides = overrides
        self._session = Session()
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def __call__(self, service: str) -> Any:
        with self._lock:
            if service not in self._clients:
                self._clients[service] = make_client(
                    self._settings, service, self._session, self._overrides
                )
            return self._clients[service]


def make_client(
    settings: Settings,
    service: str,
    session: Session | None = None,
    overrides: Config | None = None,
) -> Any:
    session = session or Session()
    config = Config(
        retries=RETRIES,
        connect_timeout=10,
        read_timeout=60,
        # Every body sent to S3 carries a checksum S3 verifies (the backup's CRC32C per
        # part, botocore's own otherwise): hashing it again for the signature, which
        # botocore does when the checksum is the caller's, would only cost CPU.
        s3={"payload_signing_enabled": False} if service == "s3" else None,
    )
    return session.create_client(
        service,
        region_name=GLOBAL_SERVICES.get(service, settings.aws_default_region),
        endpoint_url=settings.aws_endpoint_url or None,
        config=config.merge(overrides) if overrides is not None else config,
    )


def error_code(exc: BaseException) -> str:
    """AccessDenied, NoSuchBucket, … or the exception's name."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "ClientError"))
    return type(exc).__name__


def describe_aws_error(action: str, exc: BaseException) -> str:
    """'upload backup-….db: AccessDenied (Access Denied)' — what was being done, then why."""
    code = error_code(exc)
    if isinstance(exc, ClientError):
        message = exc.response.get("Error", {}).get("Message") or ""
        detail = f" ({message})" if message and message != code else ""
    else:
        detail = f" ({exc})" if str(exc) else ""
    return f"{action}: {code}{detail}"

"""botocore timeouts per call path of the app: a hung AWS dependency fails a request in a
few seconds instead of holding it for botocore's defaults (60 s reads, 5 attempts).

Measured against an endpoint that accepts and never answers: a PutObject waits about twice
the read timeout per attempt (botocore reads the status line and the headers apart), so the
worst case is about attempts × 2 × read timeout, plus the retry back-off.
"""

from __future__ import annotations

from botocore.config import Config

from app.settings import AppSettings
from opsd.aws import AwsClients

# An upload: the drawing's put (and its delete when scoring fails). ~8 s at worst.
UPLOAD_CALLS = Config(
    connect_timeout=1, read_timeout=2, retries={"mode": "standard", "max_attempts": 2}
)
# The dashboard's operations panel (CloudWatch): it shows the error instead. ~4 s at worst.
DASHBOARD_CALLS = Config(
    connect_timeout=1, read_timeout=2, retries={"mode": "standard", "max_attempts": 1}
)
# The admin password from Secrets Manager, on a login or an admin request. ~8 s at worst.
LOGIN_CALLS = Config(
    connect_timeout=1, read_timeout=2, retries={"mode": "standard", "max_attempts": 2}
)


class AppAwsClients:
    """The app's clients: the default ones (start-up: the model) and one set per path."""

    def __init__(self, settings: AppSettings) -> None:
        self.startup = AwsClients(settings)
        self.upload = AwsClients(settings, UPLOAD_CALLS)
        self.dashboard = AwsClients(settings, DASHBOARD_CALLS)
        self.login = AwsClients(settings, LOGIN_CALLS)

"""Where the admin password comes from: Secrets Manager, or a setting in local mode."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import sys
import threading
import time
from typing import TextIO

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import SecretStr

from app.settings import AppSettings
from opsd.aws import AwsClients, describe_aws_error
from opsd.logging import redactor

SECRET_JSON_KEYS = ("password", "admin_password", "ADMIN_PASSWORD")


class AdminUnavailable(Exception):
    """The admin password cannot be had right now; the message says why."""


def password_from_secret_string(secret: str) -> str:
    """A secret holds the password itself or a JSON object with a `password` field."""
    text = secret.strip()
    if text.startswith("{"):
        try:
            document = json.loads(text)
        except json.JSONDecodeError:
            raise AdminUnavailable("admin password secret is not valid JSON") from None
        for key in SECRET_JSON_KEYS:
            value = document.get(key) if isinstance(document, dict) else None
            if isinstance(value, str) and value:
                return value
        raise AdminUnavailable("admin password secret has no 'password' field")
    if not text:
        raise AdminUnavailable("admin password secret is empty")
    return text


def with_local_password(settings: AppSettings, console: TextIO | None = None) -> AppSettings:
    """In local mode without ADMIN_PASSWORD, a password generated for this process, shown
    once on the console (never in the log)."""
    if settings.admin_password is not None or settings.enable_secrets_manager:
        return settings
    password = secrets.token_urlsafe(12)
    redactor.register([password])
    stream = console or sys.stderr
    print(
        f"\n  Admin password for this run (ADMIN_PASSWORD is not set): {password}\n",
        file=stream,
        flush=True,
    )
    return settings.model_copy(update={"admin_password": SecretStr(password)})


class AdminPassword:
    """The current admin password, read from Secrets Manager at most every few minutes."""

    def __init__(self, settings: AppSettings, clients: AwsClients) -> None:
        self._settings = settings
        self._clients = clients
        self._lock = threading.Lock()
        self._cached: str | None = None
        self._read_at = 0.0

    def current(self) -> str:
        if not self._settings.enable_secrets_manager:
            if self._settings.admin_password is None:
                raise AdminUnavailable("no admin password is configured")
            return self._settings.admin_password.get_secret_value()
        with self._lock:
            fresh = time.monotonic() - self._read_at < self._settings.admin_password_cache_seconds
            if self._cached is None or not fresh:
                self._cached = self._read_secret()
                self._read_at = time.monotonic()
            return self._cached

    def _read_secret(self) -> str:
        arn = self._settings.admin_password_secret_arn
        try:
            answer = self._clients("secretsmanager").get_secret_value(SecretId=arn)
        except (ClientError, BotoCoreError) as exc:
            raise AdminUnavailable(describe_aws_error("read admin password secret", exc)) from None
        password = password_from_secret_string(answer.get("SecretString") or "")
        redactor.register([password])
        return password

    def matches(self, given: str) -> bool:
        """Constant-time comparison (of digests, so the length does not leak either)."""
        expected = hashlib.sha256(self.current().encode()).digest()
        offered = hashlib.sha256(given.encode()).digest()
        return hmac.compare_digest(expected, offered)

    def session_key(self) -> bytes:
        if self._settings.session_secret is not None:
            return self._settings.session_secret.get_secret_value().encode()
        return hmac.new(self.current().encode(), b"admin session signing key", "sha256").digest()

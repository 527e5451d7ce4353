"""Admin sessions: a signed cookie with an idle timeout, per-client login throttling, CSRF."""

from __future__ import annotations

import hmac
import math
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from urllib.parse import urlsplit

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from app.admin_password import AdminPassword
from app.settings import AppSettings

SESSION_COOKIE = "admin_session"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
_SALT = "drawing-analysis admin session"


@dataclass(frozen=True)
class AdminSession:
    csrf_token: str
    started_at: float


class SessionSigner:
    """Cookies are re-signed on every admin request, so `max_age` is the idle timeout."""

    def __init__(self, settings: AppSettings, password: AdminPassword) -> None:
        self._settings = settings
        self._password = password

    def _serializer(self) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(self._password.session_key(), salt=_SALT)

    def new_session(self) -> AdminSession:
        return AdminSession(csrf_token=secrets.token_urlsafe(24), started_at=time.time())

    def sign(self, session: AdminSession) -> str:
        return self._serializer().dumps({"csrf": session.csrf_token, "start": session.started_at})

    def verify(self, cookie: str | None) -> AdminSession | None:
        """The session of a cookie that is genuine, not idle too long and not too old."""
        if not cookie:
            return None
        try:
            payload = self._serializer().loads(
                cookie, max_age=self._settings.session_idle_minutes * 60
            )
        except (BadSignature, SignatureExpired):
            return None
        if not isinstance(payload, dict):
            return None
        csrf, started = payload.get("csrf"), payload.get("start")
        if not isinstance(csrf, str) or not isinstance(started, int | float):
            return None
        if time.time() - started > self._settings.session_max_hours * 3600:
            return None
        return AdminSession(csrf_token=csrf, started_at=float(started))

    def cookie_attributes(self) -> dict[str, object]:
        return {
            "key": SESSION_COOKIE,
            "httponly": True,
            "samesite": "strict",
            "secure": not self._settings.is_local,
            "path": "/",
            "max_age": self._settings.session_idle_minutes * 60,
        }


def csrf_token_matches(session: AdminSession, offered: str | None) -> bool:
    return bool(offered) and hmac.compare_digest(session.csrf_token.encode(), offered.encode())


def same_origin(origin: str | None, referer: str | None, host: str | None) -> bool:
    """A browser's Origin (or Referer) must name this host; requests without either (not
    from a browser) pass, since they also need the session's CSRF token."""
    source = origin or referer
    if not source:
        return True
    if source == "null" or not host:
        return False
    return urlsplit(source).netloc.lower() == host.lower()


class LoginThrottle:
    """At most `max_failures` failed logins per client in a sliding window."""

    def __init__(self, max_failures: int, window_s: float, max_clients: int = 10_000) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.max_clients = max_clients
        self._failures: OrderedDict[str, list[float]] = OrderedDict()
        self._lock = threading.Lock()

    def retry_after(self, client: str, now: float | None = None) -> int | None:
        """Seconds the client must wait before trying again, or None when it may try."""
        now = time.monotonic() if now is None else now
        with self._lock:
            recent = self._recent(client, now)
            if len(recent) < self.max_failures:
                return None
            freed_at = recent[len(recent) - self.max_failures] + self.window_s
            return max(1, math.ceil(freed_at - now))

    def record_failure(self, client: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            recent = self._recent(client, now)
            recent.append(now)
            self._failures[client] = recent
            self._failures.move_to_end(client)
            while len(self._failures) > self.max_clients:
                self._failures.popitem(last=False)

    def reset(self, client: str) -> None:
        with self._lock:
            self._failures.pop(client, None)

    def _recent(self, client: str, now: float) -> list[float]:
        return [t for t in self._failures.get(client, []) if now - t < self.window_s]

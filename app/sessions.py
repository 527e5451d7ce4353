"""Admin sessions: a row in `admin_sessions` per login, named by a signed cookie; CSRF.

The cookie holds a random token, signed and re-signed on every admin request (so the
signature's age is the idle timeout, with no database write); the database holds only the
token's SHA-256, the CSRF token, the session's end and a fingerprint of the password it was
opened with. A request costs one primary-key lookup. Logout deletes the row, "log out
everywhere" deletes them all, and a session opened with another password than the current
one is no session (rotating the password ends every session, whatever SESSION_SECRET is).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import Engine, delete, select

from app.admin_password import AdminPassword
from app.settings import AppSettings
from app.tables import admin_sessions

SESSION_COOKIE = "admin_session"
DEVICE_COOKIE = "admin_device"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
_SALT = "drawing-analysis admin session"
_DEVICE_SALT = "drawing-analysis admin device"


@dataclass(frozen=True)
class AdminSession:
    token: str
    csrf_token: str
    started_at: float


def _stamp(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class SessionStore:
    def __init__(self, settings: AppSettings, password: AdminPassword, engine: Engine) -> None:
        self._settings = settings
        self._password = password
        self._engine = engine

    def _serializer(self, salt: str = _SALT) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(self._password.session_key(), salt=salt)

    def _password_fingerprint(self) -> str:
        key = self._password.current().encode()
        return hmac.new(key, b"admin session password fingerprint", "sha256").hexdigest()[:32]

    def start(self) -> AdminSession:
        """A new session, recorded; expired rows are removed on the way."""
        now = time.time()
        session = AdminSession(secrets.token_urlsafe(32), secrets.token_urlsafe(24), now)
        with self._engine.begin() as conn:
            conn.execute(delete(admin_sessions).where(admin_sessions.c.expires_at <= _stamp(now)))
            conn.execute(
                admin_sessions.insert().values(
                    token_sha256=_token_hash(session.token),
                    csrf_token=session.csrf_token,
                    password_fingerprint=self._password_fingerprint(),
                    created_at=_stamp(now),
                    expires_at=_stamp(now + self._settings.session_max_hours * 3600),
                )
            )
        return session

    def sign(self, session: AdminSession) -> str:
        return self._serializer().dumps({"sid": session.token})

    def verify(self, cookie: str | None) -> AdminSession | None:
        """The live session of a genuine cookie used within the idle timeout."""
        if not cookie:
            return None
        try:
            payload = self._serializer().loads(
                cookie, max_age=self._settings.session_idle_minutes * 60
            )
        except (BadSignature, SignatureExpired):
            return None
        token = payload.get("sid") if isinstance(payload, dict) else None
        if not isinstance(token, str):
            return None
        query = select(
            admin_sessions.c.csrf_token,
            admin_sessions.c.password_fingerprint,
            admin_sessions.c.created_at,
            admin_sessions.c.expires_at,
        ).where(admin_sessions.c.token_sha256 == _token_hash(token))
        with self._engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None or row.expires_at <= _stamp(time.time()):
            return None
        if not hmac.compare_digest(row.password_fingerprint, self._password_fingerprint()):
            return None
        started = datetime.fromisoformat(row.created_at).timestamp()
        return AdminSession(token, row.csrf_token, started)

    def end(self, session: AdminSession) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                delete(admin_sessions).where(
                    admin_sessions.c.token_sha256 == _token_hash(session.token)
                )
            )

    def end_all(self) -> int:
        """Log out everywhere; how many sessions were open."""
        with self._engine.begin() as conn:
            return int(conn.execute(delete(admin_sessions)).rowcount or 0)

    def new_device(self) -> str:
        """A device cookie's value: a signed random id."""
        return self._serializer(_DEVICE_SALT).dumps({"device": secrets.token_urlsafe(16)})

    def device(self, cookie: str | None) -> str | None:
        """The id of a genuine device cookie that is not too old."""
        if not cookie:
            return None
        try:
            payload = self._serializer(_DEVICE_SALT).loads(
                cookie, max_age=self._settings.login_device_days * 86_400
            )
        except (BadSignature, SignatureExpired):
            return None
        device = payload.get("device") if isinstance(payload, dict) else None
        return device if isinstance(device, str) else None

    def cookie_attributes(self) -> dict[str, object]:
        return {
            "key": SESSION_COOKIE,
            "httponly": True,
            "samesite": "strict",
            "secure": not self._settings.is_local,
            "path": "/",
            "max_age": self._settings.session_idle_minutes * 60,
        }

    def device_cookie_attributes(self) -> dict[str, object]:
        return {
            "key": DEVICE_COOKIE,
            "httponly": True,
            "samesite": "strict",
            "secure": not self._settings.is_local,
            "path": "/login",
            "max_age": self._settings.login_device_days * 86_400,
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

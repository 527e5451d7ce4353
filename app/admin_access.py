"""FastAPI dependencies that close the admin side: API → 401, pages → redirect to /login,
state-changing requests → CSRF token and same-origin check."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, HTTPException, Request
from starlette.responses import Response

from app.middleware import STATE_SET_COOKIE
from app.services import AppServices, services
from app.sessions import (
    CSRF_HEADER,
    SESSION_COOKIE,
    AdminSession,
    csrf_token_matches,
    same_origin,
)


class LoginRequired(Exception):
    """A page needs an admin session; the handler redirects to the login page."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


def set_cookie_later(request: Request, header: str) -> None:
    cookies = getattr(request.state, STATE_SET_COOKIE, None)
    if cookies is None:
        cookies = []
        setattr(request.state, STATE_SET_COOKIE, cookies)
    cookies.append(header)


def session_cookie_header(app_services: AppServices, value: str) -> str:
    scratch = Response()
    scratch.set_cookie(value=value, **app_services.sessions.cookie_attributes())  # type: ignore[arg-type]
    return scratch.headers["set-cookie"]


def device_cookie_header(app_services: AppServices) -> str:
    """A new device cookie: this browser logged in with the password."""
    scratch = Response()
    scratch.set_cookie(
        value=app_services.sessions.new_device(),
        **app_services.sessions.device_cookie_attributes(),  # type: ignore[arg-type]
    )
    return scratch.headers["set-cookie"]


def clearing_cookie_header(app_services: AppServices) -> str:
    attributes = app_services.sessions.cookie_attributes()
    scratch = Response()
    scratch.delete_cookie(
        SESSION_COOKIE,
        path="/",
        secure=bool(attributes["secure"]),
        httponly=True,
        samesite="strict",
    )
    return scratch.headers["set-cookie"]


def current_session(request: Request) -> AdminSession | None:
    """The caller's live admin session, re-signed so the idle timeout starts again."""
    app_services = services(request)
    session = app_services.sessions.verify(request.cookies.get(SESSION_COOKIE))
    if session is not None:
        header = session_cookie_header(app_services, app_services.sessions.sign(session))
        set_cookie_later(request, header)
    return session


def admin_api(request: Request) -> AdminSession:
    session = current_session(request)
    if session is None:
        raise HTTPException(401, "admin login required", headers={"WWW-Authenticate": "Cookie"})
    return session


def admin_page(request: Request) -> AdminSession:
    session = current_session(request)
    if session is None:
        raise LoginRequired(request.url.path)
    return session


def require_same_origin(request: Request) -> None:
    if not same_origin(
        request.headers.get("origin"), request.headers.get("referer"), request.headers.get("host")
    ):
        raise HTTPException(403, "cross-site request refused")


def admin_api_write(
    request: Request, session: Annotated[AdminSession, Depends(admin_api)]
) -> AdminSession:
    """A state-changing admin API request: session, same origin and the X-CSRF-Token header."""
    require_same_origin(request)
    if not csrf_token_matches(session, request.headers.get(CSRF_HEADER)):
        raise HTTPException(403, "missing or wrong CSRF token (X-CSRF-Token header)")
    return session


def login_redirect_target(next_path: str | None) -> str:
    """Only a local path: never another site (open redirect)."""
    if next_path and next_path.startswith("/") and not next_path.startswith(("//", "/\\")):
        return next_path
    return "/dashboard"


def login_url(next_path: str) -> str:
    return f"/login?next={quote(next_path, safe='/')}"

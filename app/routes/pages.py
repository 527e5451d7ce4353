"""HTML pages: the public demo, the login form and the admin dashboard."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from app.admin_access import (
    admin_page,
    clearing_cookie_header,
    current_session,
    device_cookie_header,
    login_redirect_target,
    require_same_origin,
    session_cookie_header,
    set_cookie_later,
)
from app.formatting import FILTERS
from app.operations_panel import PANEL_METRICS
from app.records import analysis_stats, recent_analyses
from app.runtime_config import read_tunables
from app.scoring import MAX_AGE, MIN_AGE
from app.scoring.synthetic import SUBJECTS
from app.services import AppServices, ServicesDep
from app.sessions import DEVICE_COOKIE, AdminSession, csrf_token_matches

log = structlog.get_logger()
TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent.parent / "templates"))
TEMPLATES.env.filters.update(FILTERS)

router = APIRouter(include_in_schema=False)


@router.get("/")
def home() -> RedirectResponse:
    return RedirectResponse("/demo", status_code=303)


@router.get("/demo", response_class=HTMLResponse)
def demo(request: Request, app_services: ServicesDep) -> Response:
    context = {
        "min_age": MIN_AGE,
        "max_age": MAX_AGE,
        "subjects": SUBJECTS,
        "max_upload_mb": app_services.settings.max_upload_mb,
        "model_version": app_services.model.bundle.model_version,
    }
    return TEMPLATES.TemplateResponse(request, "demo.html", context)


def _client(request: Request) -> str:
    """The address our proxies saw (app/client_address.py)."""
    return request.client.host if request.client else "unknown"


def _login_page(request: Request, next_path: str, error: str | None, status: int) -> Response:
    context = {"next": login_redirect_target(next_path), "error": error}
    return TEMPLATES.TemplateResponse(request, "login.html", context, status_code=status)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/dashboard") -> Response:
    if current_session(request) is not None:
        return RedirectResponse(login_redirect_target(next), status_code=303)
    return _login_page(request, next, None, 200)


@router.post("/login")
def login(
    request: Request,
    app_services: ServicesDep,
    password: Annotated[str, Form(max_length=1024)],
    next_path: Annotated[str, Form(alias="next")] = "/dashboard",
) -> Response:
    require_same_origin(request)
    client = _client(request)
    guard = app_services.login_guard
    device = app_services.sessions.device(request.cookies.get(DEVICE_COOKIE))
    refusal = guard.refusal(client, device)
    if refusal is not None:
        response = _login_page(request, next_path, refusal.message, 429)
        response.headers["Retry-After"] = str(refusal.retry_after_s)
        return response
    if not app_services.admin_password.matches(password):
        guard.record_failure(client, device)
        # Bounded by the limits: refused attempts (the flood) are not logged one by one.
        log.info("login failed", client=client, known_device=device is not None)
        return _login_page(request, next_path, "Wrong password.", 401)
    guard.record_success(client, device)
    session = app_services.sessions.start()
    set_cookie_later(
        request, session_cookie_header(app_services, app_services.sessions.sign(session))
    )
    if device is None:
        set_cookie_later(request, device_cookie_header(app_services))
    return RedirectResponse(login_redirect_target(next_path), status_code=303)


@router.post("/logout")
def logout(
    request: Request,
    app_services: ServicesDep,
    csrf_token: Annotated[str, Form()] = "",
    everywhere: Annotated[bool, Form(description="end every admin session")] = False,
) -> Response:
    """End this session, or with `everywhere` every admin session (all browsers)."""
    session = current_session(request)
    if session is not None:
        require_same_origin(request)
        if not csrf_token_matches(session, csrf_token):
            raise HTTPException(403, "missing or wrong CSRF token")
        if everywhere:
            ended = app_services.sessions.end_all()
            log.info("admin logged out everywhere", sessions=ended)
        else:
            app_services.sessions.end(session)
    response = RedirectResponse("/login", status_code=303)
    request.state.set_cookie_headers = [clearing_cookie_header(app_services)]
    return response


def dashboard_context(app_services: AppServices) -> dict[str, Any]:
    engine, settings = app_services.engine, app_services.settings
    tunables = read_tunables(engine, settings)
    since = (datetime.now(UTC) - timedelta(hours=24)).isoformat(timespec="seconds")
    return {
        "stats": analysis_stats(engine, since),
        "recent": recent_analyses(engine, tunables.dashboard_recent_count),
        "tunables": tunables,
        "model": app_services.model,
        "model_loaded_at": app_services.model_loaded_at,
        "operations": app_services.operations.reading(),
        "panel_size": len(PANEL_METRICS),
        "environment": settings.environment,
    }


@router.get("/dashboard", response_class=HTMLResponse)
def dashboard(
    request: Request,
    app_services: ServicesDep,
    session: Annotated[AdminSession, Depends(admin_page)],
) -> Response:
    context = dashboard_context(app_services)
    context["csrf_token"] = session.csrf_token
    return TEMPLATES.TemplateResponse(request, "dashboard.html", context)

"""The FastAPI application factory: `create_app()` (gunicorn: 'app.main:create_app()')."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from app.admin_access import LoginRequired, login_url
from app.admin_password import AdminUnavailable, with_local_password
from app.api_docs import DOCS_ASSETS_PACKAGE, docs_router
from app.aws_calls import AppAwsClients
from app.client_address import ClientAddressMiddleware
from app.database import engine_for
from app.middleware import BodyLimitMiddleware, ResponseHeadersMiddleware, UploadAdmission
from app.routes import api, pages
from app.scoring import load_latest
from app.services import AppServices
from app.settings import AppSettings
from opsd.logging import configure_logging
from opsd.settings import load_settings

STATIC_DIR = Path(__file__).parent / "static"
RETRY_AFTER_S = 30
log = structlog.get_logger()


def describe_validation(exc: RequestValidationError) -> str:
    """FastAPI's list of errors as one line: 'age: Input should be a valid integer'."""
    errors = exc.errors()
    if not errors:
        return "invalid request"
    first = errors[0]
    location = [str(part) for part in first.get("loc", ()) if part not in ("body", "query")]
    field = ".".join(location)
    message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    return f"{field}: {message}" if field else message


def _install_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> Response:
        return JSONResponse({"detail": describe_validation(exc)}, status_code=422)

    @app.exception_handler(HTTPException)
    async def _http(_request: Request, exc: HTTPException) -> Response:
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        return JSONResponse({"detail": detail}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(LoginRequired)
    async def _login(_request: Request, exc: LoginRequired) -> Response:
        return RedirectResponse(login_url(exc.next_path), status_code=303)

    @app.exception_handler(AdminUnavailable)
    async def _admin_unavailable(_request: Request, exc: AdminUnavailable) -> Response:
        # The reason names the secret and the endpoint: the log has it, the public does not.
        log.error("admin login unavailable", error=str(exc))
        return JSONResponse(
            {"detail": "admin login is unavailable right now; try again later"},
            status_code=503,
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.error("request failed", path=request.url.path, error=f"{type(exc).__name__}: {exc}")
        return JSONResponse({"detail": "internal error; the request was not saved"}, 500)


def _open_services(settings: AppSettings) -> AppServices:
    clients = AppAwsClients(settings)
    model = load_latest(clients.startup("s3"), settings.s3_bucket_models)
    engine = engine_for(settings)
    return AppServices.open(settings, clients, engine, model)


def create_app(settings: AppSettings | None = None) -> FastAPI:
    """The app; the model and the database are opened in the lifespan, not here."""
    settings = settings or load_settings(AppSettings)
    configure_logging(settings.log_level, settings.log_format, secrets=settings.secret_values())
    settings = with_local_password(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app_services = await run_in_threadpool(_open_services, settings)
        app.state.services = app_services
        log.info(
            "app started",
            environment=settings.environment,
            model_version=app_services.model.bundle.model_version,
            model_source=app_services.model.source,
        )
        try:
            yield
        finally:
            app_services.engine.dispose()

    app = FastAPI(
        title="Children's Drawing Anomaly Detection",
        summary="Upload a child's drawing with the child's age; get an anomaly score.",
        version="1.0",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.add_middleware(ResponseHeadersMiddleware)
    app.add_middleware(
        BodyLimitMiddleware,
        upload_limit=lambda: settings.max_upload_bytes,
        body_seconds=settings.request_body_seconds,
    )
    app.add_middleware(
        UploadAdmission,
        limit=settings.upload_queue_limit,
        discard_bytes=lambda: settings.max_upload_bytes,
        body_seconds=settings.request_body_seconds,
    )
    app.add_middleware(ClientAddressMiddleware, trusted_hops=settings.trusted_proxy_hops)
    _install_handlers(app)
    app.mount(
        "/static",
        StaticFiles(directory=STATIC_DIR, packages=[DOCS_ASSETS_PACKAGE]),
        name="static",
    )
    app.include_router(api.router)
    app.include_router(docs_router(app))
    app.include_router(pages.router)
    return app

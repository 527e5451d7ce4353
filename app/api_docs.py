"""/docs (Swagger UI) and /redoc (ReDoc) served from this app: no CDN, no inline script.

The Swagger UI and ReDoc bundles come from the `fastapi-offline` package (its static folder,
served under /static beside the app's own files); the pages start them with scripts of ours
in app/static/docs/, so the pages carry the same Content-Security-Policy as every other page.
"""

from __future__ import annotations

from html import escape

from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse

# (package, folder) for StaticFiles(packages=...): swagger-ui-bundle.js, swagger-ui.css,
# redoc.standalone.js, favicon.png.
DOCS_ASSETS_PACKAGE = ("fastapi_offline", "static")
DOCS_URL, REDOC_URL, OAUTH2_REDIRECT_URL = "/docs", "/redoc", "/docs/oauth2-redirect"


def _page(title: str, head: str, body: str) -> HTMLResponse:
    return HTMLResponse(
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title)}</title>\n"
        '<link rel="icon" href="/static/favicon.png">\n'
        f"{head}</head>\n<body>\n{body}</body>\n</html>\n"
    )


def docs_router(app: FastAPI) -> APIRouter:
    """The three documentation pages of `app` (created with docs_url=None, redoc_url=None)."""
    router = APIRouter(include_in_schema=False)
    spec = escape(app.openapi_url or "/openapi.json")

    @router.get(DOCS_URL)
    async def swagger_ui() -> HTMLResponse:
        return _page(
            f"{app.title} - Swagger UI",
            '<link rel="stylesheet" href="/static/swagger-ui.css">\n',
            f'<div id="swagger-ui" data-spec-url="{spec}" '
            f'data-oauth2-redirect-url="{OAUTH2_REDIRECT_URL}"></div>\n'
            '<script src="/static/swagger-ui-bundle.js"></script>\n'
            '<script src="/static/docs/swagger-start.js"></script>\n',
        )

    @router.get(OAUTH2_REDIRECT_URL)
    async def swagger_ui_oauth2_redirect() -> HTMLResponse:
        return _page(
            "Swagger UI: OAuth2 Redirect",
            "",
            '<script src="/static/docs/swagger-oauth2-redirect.js"></script>\n',
        )

    @router.get(REDOC_URL)
    async def redoc() -> HTMLResponse:
        return _page(
            f"{app.title} - ReDoc",
            '<link rel="stylesheet" href="/static/docs/redoc-page.css">\n',
            f'<div id="redoc" data-spec-url="{spec}"></div>\n'
            '<script src="/static/redoc.standalone.js"></script>\n'
            '<script src="/static/docs/redoc-start.js"></script>\n',
        )

    return router

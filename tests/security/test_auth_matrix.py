"""Every route and method of the app × anonymous / admin / expired session.

The expectations below are declared per route; the first test derives the routes from the
app's own route table, so a new route fails it until it is given an expectation here."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.settings import AppSettings
from tests.app.helpers import ADMIN_PASSWORD, drawing_bytes, login, route_table

IDENTITIES = ("anonymous", "admin", "expired")
UPLOAD = {"files": {"file": ("d.png", b"", "image/png")}, "data": {"age": "6"}}
CONFIG_CHANGE = {"json": {"threshold_percentile": 90}}
# (method, path) → (request arguments, expected status per identity); "login" means a
# redirect to the login page, which is how a page refuses.
ADMIN = {"anonymous": 401, "admin": 200, "expired": 401}
ADMIN_PAGE = {"anonymous": "login", "admin": 200, "expired": "login"}
PUBLIC = dict.fromkeys(IDENTITIES, 200)
EXPECTED: dict[tuple[str, str], tuple[dict[str, Any], dict[str, int | str]]] = {
    ("GET", "/"): ({}, dict.fromkeys(IDENTITIES, 303)),
    ("GET", "/demo"): ({}, PUBLIC),
    ("GET", "/health"): ({}, PUBLIC),
    ("GET", "/docs"): ({}, PUBLIC),
    ("GET", "/docs/oauth2-redirect"): ({}, PUBLIC),
    ("GET", "/redoc"): ({}, PUBLIC),
    ("GET", "/openapi.json"): ({}, PUBLIC),
    ("GET", "/login"): ({}, {"anonymous": 200, "admin": 303, "expired": 200}),
    ("POST", "/login"): ({"data": {"password": ADMIN_PASSWORD}}, dict.fromkeys(IDENTITIES, 303)),
    ("POST", "/logout"): ({"data": {"csrf_token": "<csrf>"}}, dict.fromkeys(IDENTITIES, 303)),
    ("POST", "/api/v1/drawings"): (UPLOAD, dict.fromkeys(IDENTITIES, 201)),
    ("GET", "/api/v1/analyses/{public_id}"): ({}, dict.fromkeys(IDENTITIES, 404)),
    ("GET", "/api/v1/admin/analyses/{analysis_id}"): ({}, {**ADMIN, "admin": 404}),
    ("DELETE", "/api/v1/sessions"): ({}, {**ADMIN, "admin": 204}),
    ("GET", "/api/v1/config"): ({}, ADMIN),
    ("PUT", "/api/v1/config"): (CONFIG_CHANGE, ADMIN),
    ("GET", "/dashboard"): ({}, ADMIN_PAGE),
    ("GET", "/static/{path}"): ({}, PUBLIC),
}
CONCRETE = {"{analysis_id}": "987654", "{public_id}": "A" * 22, "{path}": "style.css"}


def concrete(path: str) -> str:
    for placeholder, value in CONCRETE.items():
        path = path.replace(placeholder, value)
    return path


def test_every_route_of_the_app_has_declared_expectations(client: TestClient) -> None:
    assert route_table(client.app.routes) == set(EXPECTED)  # type: ignore[attr-defined]


@pytest.fixture
def as_identity(
    make_client: Callable[..., TestClient],
    app_settings: AppSettings,
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[[str], tuple[TestClient, str]]:
    def make(identity: str) -> tuple[TestClient, str]:
        client = make_client(app_settings)
        token = ""
        if identity in ("admin", "expired"):
            token = login(client)
            client.headers["X-CSRF-Token"] = token
        if identity == "expired":
            later = time.time() + app_settings.session_idle_minutes * 60 + 1
            monkeypatch.setattr(time, "time", lambda: later)
        return client, token

    return make


@pytest.mark.parametrize("identity", IDENTITIES)
@pytest.mark.parametrize(("method", "path"), sorted(EXPECTED))
def test_route_answers_each_identity_as_declared(
    as_identity: Callable[[str], tuple[TestClient, str]], method: str, path: str, identity: str
) -> None:
    client, token = as_identity(identity)
    arguments, expected = EXPECTED[(method, path)]
    arguments = {**arguments}
    if "files" in arguments:
        arguments["files"] = {"file": ("d.png", drawing_bytes(), "image/png")}
    if arguments.get("data", {}).get("csrf_token") == "<csrf>":
        arguments["data"] = {"csrf_token": token}
    response = client.request(method, concrete(path), follow_redirects=False, **arguments)

    wanted = expected[identity]
    if wanted == "login":
        assert response.status_code == 303, response.text
        assert response.headers["location"].startswith("/login?next=")
    else:
        assert response.status_code == wanted, response.text
    if wanted in (401, "login"):
        assert "admin_session=" not in response.headers.get("set-cookie", "") or (
            'admin_session=""' in response.headers.get("set-cookie", "")
        )


@pytest.mark.parametrize("path", sorted({concrete(p) for _, p in EXPECTED}))
def test_methods_a_route_does_not_have_are_refused_not_served(
    admin_client: TestClient, path: str
) -> None:
    declared = {m for m, p in EXPECTED if concrete(p) == path}
    for method in {"GET", "POST", "PUT", "PATCH", "DELETE"} - declared:
        response = admin_client.request(method, path, follow_redirects=False)
        assert response.status_code in (404, 405), (method, path, response.status_code)


def test_a_session_older_than_its_maximum_age_ends_even_while_active(
    client: TestClient, app_settings: AppSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    login(client)
    start = time.time()
    step = app_settings.session_idle_minutes * 60 - 5
    now = start
    while now - start <= app_settings.session_max_hours * 3600:
        assert client.get("/api/v1/config").status_code == 200
        now += step
        monkeypatch.setattr(time, "time", lambda moment=now: moment)
    assert client.get("/api/v1/config").status_code == 401

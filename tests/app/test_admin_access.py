"""Every route × anonymous / admin, login throttling, the cookie, idle timeout, CSRF."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from app.login_throttle import LoginThrottle
from app.sessions import SESSION_COOKIE
from app.settings import AppSettings
from tests.app.helpers import ADMIN_PASSWORD, login, route_table

PUBLIC_ROUTES = [
    ("GET", "/health"),
    ("GET", "/demo"),
    ("GET", "/login"),
    ("GET", "/docs"),
    ("GET", "/openapi.json"),
    ("GET", "/static/style.css"),
]
ADMIN_API_ROUTES = [("GET", "/api/v1/config"), ("PUT", "/api/v1/config")]
ADMIN_PAGES = [("GET", "/dashboard")]
# Tested on their own: uploads and analyses (test_drawing_uploads), login and logout (below).
OTHER_ROUTES = [
    ("GET", "/"),
    ("GET", "/static/{path}"),  # the static files, requested above as /static/style.css
    ("POST", "/api/v1/drawings"),
    ("GET", "/api/v1/analyses/{public_id}"),
    ("GET", "/api/v1/admin/analyses/{analysis_id}"),
    ("DELETE", "/api/v1/sessions"),
    ("POST", "/login"),
    ("POST", "/logout"),
    ("GET", "/docs/oauth2-redirect"),
    ("GET", "/redoc"),
]


def test_every_route_is_in_the_matrix(client: TestClient) -> None:
    """A new route must be added to one of the lists above (and so be tested)."""
    known = set(PUBLIC_ROUTES + ADMIN_API_ROUTES + ADMIN_PAGES + OTHER_ROUTES)
    routes = route_table(client.app.routes)  # type: ignore[attr-defined]
    assert routes - known == set()


@pytest.mark.parametrize(("method", "path"), PUBLIC_ROUTES)
def test_public_routes_answer_without_a_session(client: TestClient, method: str, path: str) -> None:
    assert client.request(method, path).status_code == 200


@pytest.mark.parametrize(("method", "path"), ADMIN_API_ROUTES)
def test_admin_api_refuses_anonymous_callers_with_401(
    client: TestClient, method: str, path: str
) -> None:
    response = client.request(method, path, json={"threshold_percentile": 90})
    assert response.status_code == 401
    assert response.json() == {"detail": "admin login required"}


@pytest.mark.parametrize(("method", "path"), ADMIN_PAGES)
def test_admin_pages_send_anonymous_visitors_to_the_login(
    client: TestClient, method: str, path: str
) -> None:
    response = client.request(method, path, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == f"/login?next={path}"


@pytest.mark.parametrize(("method", "path"), ADMIN_API_ROUTES + ADMIN_PAGES + PUBLIC_ROUTES)
def test_an_admin_reaches_every_route(admin_client: TestClient, method: str, path: str) -> None:
    response = admin_client.request(method, path, json={"threshold_percentile": 90})
    assert response.status_code == 200, response.text


def test_a_forged_or_tampered_cookie_is_no_session(client: TestClient) -> None:
    login(client)
    genuine = client.cookies[SESSION_COOKIE]
    client.cookies.set(SESSION_COOKIE, genuine[:-2] + ("AA" if genuine[-2:] != "AA" else "BB"))
    assert client.get("/api/v1/config").status_code == 401


def test_the_wrong_password_is_refused_and_keeps_the_visitor_out(client: TestClient) -> None:
    response = client.post("/login", data={"password": "guess"}, follow_redirects=False)
    assert response.status_code == 401
    assert "Wrong password." in response.text
    assert SESSION_COOKIE not in client.cookies
    assert client.get("/api/v1/config").status_code == 401


def test_logins_are_throttled_per_client_after_repeated_failures(
    client: TestClient, app_settings: AppSettings
) -> None:
    for _ in range(app_settings.login_max_failures):
        assert client.post("/login", data={"password": "guess"}).status_code == 401
    throttled = client.post("/login", data={"password": ADMIN_PASSWORD}, follow_redirects=False)

    assert throttled.status_code == 429
    assert int(throttled.headers["retry-after"]) > 0
    assert SESSION_COOKIE not in client.cookies


def test_the_throttle_forgets_failures_outside_its_window_and_counts_clients_apart() -> None:
    throttle = LoginThrottle(max_failures=2, window_s=60)
    throttle.record_failure("a", now=0)
    throttle.record_failure("a", now=1)
    assert throttle.retry_after("a", now=2) == 58
    assert throttle.retry_after("b", now=2) is None
    assert throttle.retry_after("a", now=61) is None


def test_the_session_cookie_is_httponly_strict_and_secure_outside_local_mode(
    make_client, app_settings: AppSettings
) -> None:
    local = make_client(app_settings)
    response = local.post("/login", data={"password": ADMIN_PASSWORD}, follow_redirects=False)
    header = response.headers["set-cookie"].lower()
    assert "httponly" in header and "samesite=strict" in header and "secure" not in header

    production = app_settings.model_copy(update={"environment": "production"})
    remote = make_client(production, base_url="https://testserver")
    response = remote.post("/login", data={"password": ADMIN_PASSWORD}, follow_redirects=False)
    assert "; secure" in response.headers["set-cookie"].lower()


def test_a_session_ends_after_the_idle_timeout(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, app_settings: AppSettings
) -> None:
    login(client)
    assert client.get("/api/v1/config").status_code == 200
    later = time.time() + app_settings.session_idle_minutes * 60 + 5
    monkeypatch.setattr(time, "time", lambda: later)
    assert client.get("/api/v1/config").status_code == 401


def test_activity_keeps_the_session_alive_by_re_signing_the_cookie(client: TestClient) -> None:
    login(client)
    response = client.get("/api/v1/config")
    assert SESSION_COOKIE in response.headers["set-cookie"]


def test_changing_the_config_needs_the_csrf_token(client: TestClient) -> None:
    token = login(client)
    assert client.put("/api/v1/config", json={"threshold_percentile": 90}).status_code == 403
    wrong = client.put(
        "/api/v1/config", json={"threshold_percentile": 90}, headers={"X-CSRF-Token": "x" * 32}
    )
    assert wrong.status_code == 403
    right = client.put(
        "/api/v1/config", json={"threshold_percentile": 90}, headers={"X-CSRF-Token": token}
    )
    assert right.status_code == 200


def test_a_cross_site_origin_is_refused_even_with_the_token(admin_client: TestClient) -> None:
    response = admin_client.put(
        "/api/v1/config",
        json={"threshold_percentile": 90},
        headers={"Origin": "https://evil.example"},
    )
    assert response.status_code == 403
    assert response.json() == {"detail": "cross-site request refused"}
    cross_login = admin_client.post(
        "/login", data={"password": ADMIN_PASSWORD}, headers={"Origin": "https://evil.example"}
    )
    assert cross_login.status_code == 403


def test_logout_ends_the_session_and_needs_the_csrf_token(client: TestClient) -> None:
    token = login(client)
    assert client.post("/logout", data={"csrf_token": "nope"}).status_code == 403
    response = client.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    assert response.status_code == 303
    assert client.get("/api/v1/config").status_code == 401


def test_login_only_redirects_to_local_paths(client: TestClient) -> None:
    response = client.post(
        "/login",
        data={"password": ADMIN_PASSWORD, "next": "//evil.example/x"},
        follow_redirects=False,
    )
    assert response.headers["location"] == "/dashboard"


def test_pages_carry_security_headers(client: TestClient) -> None:
    headers = client.get("/demo").headers
    assert headers["x-frame-options"] == "DENY"
    assert headers["x-content-type-options"] == "nosniff"
    assert "script-src 'self'" in headers["content-security-policy"]

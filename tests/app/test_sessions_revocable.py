"""Admin sessions end server-side: logout, "log out everywhere", password rotation; a request
costs one indexed lookup."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import event

from app.sessions import SESSION_COOKIE
from app.settings import AppSettings
from tests.app.helpers import login


def copied_cookie(client: TestClient) -> str:
    return client.cookies[SESSION_COOKIE]


def replay(client: TestClient, cookie: str, token: str) -> tuple[int, int]:
    """GET and PUT /api/v1/config with a copied cookie: the status codes."""
    client.cookies.set(SESSION_COOKIE, cookie)
    read = client.get("/api/v1/config").status_code
    write = client.put(
        "/api/v1/config", json={"dashboard_recent_count": 7}, headers={"X-CSRF-Token": token}
    ).status_code
    return read, write


def test_a_copied_cookie_no_longer_opens_the_config_after_logout(client: TestClient) -> None:
    token = login(client)
    cookie = copied_cookie(client)
    assert replay(client, cookie, token) == (200, 200)

    logout = client.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    assert logout.status_code == 303

    assert replay(client, cookie, token) == (401, 401)


def test_log_out_everywhere_ends_every_browser_s_session(
    make_client: Callable[..., TestClient], app_settings: AppSettings
) -> None:
    laptop, phone = make_client(app_settings), make_client(app_settings)
    laptop_token, phone_token = login(laptop), login(phone)
    phone_cookie = copied_cookie(phone)

    page = laptop.get("/dashboard").text
    assert 'id="logout-everywhere"' in page
    done = laptop.post(
        "/logout", data={"csrf_token": laptop_token, "everywhere": "true"}, follow_redirects=False
    )
    assert done.status_code == 303

    assert replay(phone, phone_cookie, phone_token) == (401, 401)
    assert laptop.get("/api/v1/config").status_code == 401
    with sqlite3.connect(app_settings.database_path) as conn:
        assert conn.execute("SELECT count(*) FROM admin_sessions").fetchone()[0] == 0


def test_the_api_logs_out_everywhere_with_the_csrf_token(
    make_client: Callable[..., TestClient], app_settings: AppSettings
) -> None:
    one, other = make_client(app_settings), make_client(app_settings)
    token = login(one)
    login(other)

    assert one.delete("/api/v1/sessions").status_code == 403  # no CSRF token
    assert one.delete("/api/v1/sessions", headers={"X-CSRF-Token": token}).status_code == 204

    assert other.get("/api/v1/config").status_code == 401
    assert one.get("/api/v1/config").status_code == 401


def test_rotating_the_password_ends_sessions_even_with_a_fixed_session_secret(
    make_client: Callable[..., TestClient], app_settings: AppSettings
) -> None:
    before = app_settings.model_copy(update={"session_secret": SecretStr("fixed signing key")})
    old = make_client(before)
    token = login(old)
    cookie = copied_cookie(old)

    rotated = before.model_copy(update={"admin_password": SecretStr("a brand new password")})
    new = make_client(rotated)

    assert replay(new, cookie, token) == (401, 401)
    login(new, "a brand new password")
    assert new.get("/api/v1/config").status_code == 200


def test_an_admin_request_costs_one_indexed_lookup_and_no_write(
    client: TestClient, app_settings: AppSettings
) -> None:
    login(client)
    engine = client.app.state.services.engine  # type: ignore[attr-defined]
    statements: list[str] = []

    def note(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", note)
    try:
        assert client.get("/api/v1/config").status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", note)

    session_queries = [s for s in statements if "admin_sessions" in s]
    assert len(session_queries) == 1 and session_queries[0].lstrip().startswith("SELECT")
    with sqlite3.connect(app_settings.database_path) as conn:
        plan = conn.execute(
            "EXPLAIN QUERY PLAN " + session_queries[0].replace("?", "'x'")
        ).fetchall()
    assert any("USING INDEX" in row[-1] or "PRIMARY KEY" in row[-1] for row in plan), plan

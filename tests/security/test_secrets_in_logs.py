"""The admin password and the session secret never reach a log line: a whole app session
(`python -m app serve` at DEBUG level, JSON logs) with wrong and right logins, a config
change, uploads, refused uploads, errors and a logout; and the same in-process, where
everything pytest captured (what a JUnit report would carry) is searched too."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import httpx
import pytest

from tests.app.helpers import drawing_bytes, image_bytes
from tests.faults.figures import record_figure
from tests.task_processes import ROOT, free_port, moto_endpoint

pytestmark = pytest.mark.slow
PASSWORD = "Tr0ub4dor&3-never-logged"
SESSION_SECRET = "s3ss10n-s3cr3t-never-logged-4f9a"
BUCKETS = ("drawing-analysis-drawings-local", "drawing-analysis-models-local")


def forms_of(secret: str) -> list[str]:
    """The secret as it could appear in a log: plain, URL-encoded, JSON-escaped."""
    return sorted({secret, urllib.parse.quote(secret), urllib.parse.quote_plus(secret)})


def exercise(client: httpx.Client) -> list[int]:
    """Everything a session does that could log: each response's status."""
    codes = [client.post("/login", data={"password": "wrong guess"}).status_code]
    codes.append(client.post("/login", data={"password": PASSWORD}).status_code)
    page = client.get("/dashboard")
    marker = 'name="csrf-token" content="'
    start = page.text.index(marker) + len(marker)
    token = page.text[start : page.text.index('"', start)]
    change = {"threshold_percentile": 92}
    codes.append(
        client.put("/api/v1/config", json=change, headers={"X-CSRF-Token": token}).status_code
    )
    codes.append(
        client.put(
            "/api/v1/config", json={"threshold_percentile": "x"}, headers={"X-CSRF-Token": token}
        ).status_code
    )
    for data in (drawing_bytes(), image_bytes(8, 8), b"\x89PNG\r\n\x1a\nbroken", b"text"):
        files = {"file": ("d.png", data, "image/png")}
        codes.append(client.post("/api/v1/drawings", files=files, data={"age": "7"}).status_code)
    codes.append(client.get("/api/v1/analyses/999999").status_code)
    codes.append(client.get("/no/such/page").status_code)
    codes.append(client.post("/logout", data={"csrf_token": token}).status_code)
    return codes


def test_a_whole_app_session_logs_neither_the_password_nor_the_session_secret(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    port = free_port()
    log_path = tmp_path / "app.log"
    with moto_endpoint(*BUCKETS) as endpoint:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("PYTHON")},
            "AWS_ENDPOINT_URL": endpoint,
            "DATABASE_PATH": str(tmp_path / "app.db"),
            "ADMIN_PASSWORD": PASSWORD,
            "SESSION_SECRET": SESSION_SECRET,
            "LOG_LEVEL": "DEBUG",
            "LOG_FORMAT": "json",
            "PYTHONPATH": str(ROOT),
        }
        with log_path.open("w") as log:
            app = subprocess.Popen(
                [sys.executable, "-m", "app", "serve", "--port", str(port)],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while True:
                assert app.poll() is None, log_path.read_text()[-2000:]
                try:
                    urllib.request.urlopen(f"{url}/health", timeout=2)
                    break
                except OSError:
                    assert time.monotonic() < deadline, "the app did not start"
                    time.sleep(0.3)
            with httpx.Client(base_url=url, timeout=60) as client:
                codes = exercise(client)
        finally:
            app.terminate()
            app.wait(30)

    assert {201, 303, 401, 404, 415, 422}.issubset(codes), codes
    lines = log_path.read_text().splitlines()
    assert len(lines) > 5, lines
    leaks = [
        line
        for line in lines
        for secret in (PASSWORD, SESSION_SECRET)
        for form in forms_of(secret)
        if form in line
    ]
    assert leaks == []
    record_figure(
        request.config,
        "security",
        f"secrets in logs: {len(lines)} app log lines over {len(codes)} requests, 0 with a secret",
    )


def test_nothing_pytest_captured_contains_a_secret(
    make_client,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    app_settings,
) -> None:
    settings = app_settings.model_copy(
        update={"admin_password": type(app_settings.admin_password)(PASSWORD)}  # type: ignore[misc]
    )
    client = make_client(settings)
    caplog.set_level("DEBUG")
    exercise(client)  # type: ignore[arg-type]
    out, err = capfd.readouterr()
    captured = out + err + caplog.text
    assert captured.strip(), "nothing was captured: the check would prove nothing"
    for form in forms_of(PASSWORD):
        assert form not in captured

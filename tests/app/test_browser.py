"""In headless Chromium against `python -m app serve`: the demo upload shows a result; login
leads to the dashboard with its panels; /docs and /redoc render with no network but loopback.
Screenshots go to APP_SCREENSHOT_DIR when set."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from tests.app.helpers import ADMIN_PASSWORD, drawing_bytes

pytestmark = [pytest.mark.browser, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(url: str, process: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the app exited with {process.returncode} before answering")
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"{url} did not answer within {timeout_s} s")


@pytest.fixture
def app_url(tmp_path: Path) -> Iterator[str]:
    """The app served by `python -m app serve`, with moto's server as its AWS."""
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=_free_port(), verbose=False)
    moto.start()
    endpoint = f"http://127.0.0.1:{moto._port}"
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"))
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    for bucket in ("drawings", "models", "backups"):
        s3.create_bucket(Bucket=f"drawing-analysis-{bucket}-local")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.update(
        AWS_ENDPOINT_URL=endpoint,
        DATABASE_PATH=str(tmp_path / "data" / "app.db"),
        ADMIN_PASSWORD=ADMIN_PASSWORD,
        LOG_FORMAT="json",
        PYTHONPATH=str(ROOT),
    )
    log = (tmp_path / "app.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "app", "serve", "--port", str(port)],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_for(f"http://127.0.0.1:{port}/health", process)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()
        moto.stop()


# No network but loopback: every other host resolves to nothing and every other request
# goes to a proxy that refuses connections (port 9 on loopback, where nothing listens).
OFFLINE_FLAGS = (
    "--proxy-server=http://127.0.0.1:9",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
)


@pytest.fixture
def browser(tmp_path: Path, request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        message = (
            f"headless Chromium needs {CHROMIUM} and {CHROMEDRIVER} (apt: chromium chromium-driver)"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        "--window-size=1280,1000",
        *(OFFLINE_FLAGS if request.node.get_closest_marker("offline") else ()),
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def _screenshot(driver, tmp_path: Path, name: str) -> None:  # type: ignore[no-untyped-def]
    target = Path(os.environ.get("APP_SCREENSHOT_DIR") or tmp_path)
    target.mkdir(parents=True, exist_ok=True)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1280, max(800, int(height) + 40))
    assert driver.save_screenshot(str(target / f"{name}.png"))


def test_the_demo_upload_shows_a_result(browser, app_url: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as seen
    from selenium.webdriver.support.ui import WebDriverWait

    drawing = tmp_path / "my drawing.png"
    drawing.write_bytes(drawing_bytes(age=8, size=512, seed=4))
    browser.get(f"{app_url}/demo")
    assert "Score a drawing" in browser.find_element(By.TAG_NAME, "h1").text

    browser.find_element(By.ID, "file").send_keys(str(drawing))
    age = browser.find_element(By.ID, "age")
    age.clear()
    age.send_keys("8")
    browser.find_element(By.ID, "subject").send_keys("house")
    browser.find_element(By.ID, "submit").click()

    WebDriverWait(browser, 30).until(seen.visibility_of_element_located((By.ID, "result-body")))
    assert browser.find_element(By.ID, "verdict").text.startswith(("Typical", "Unusual"))
    assert browser.find_element(By.ID, "r-group").text == "8-10 years (age 8)"
    assert float(browser.find_element(By.ID, "r-score").text) > 0
    assert not browser.find_element(By.ID, "result-error").is_displayed()
    link = browser.find_element(By.ID, "r-link").get_attribute("href") or ""
    assert re.fullmatch(rf"{app_url}/api/v1/analyses/[A-Za-z0-9_-]{{22}}", link), link
    with urllib.request.urlopen(link) as answer:  # the demo's link to the result works
        assert json.load(answer)["subject"] == "house"
    _screenshot(browser, tmp_path, "demo")

    too_young = browser.find_element(By.ID, "age")
    too_young.clear()
    too_young.send_keys("1")
    browser.execute_script("document.getElementById('age').removeAttribute('min')")
    browser.find_element(By.ID, "submit").click()
    WebDriverWait(browser, 30).until(seen.visibility_of_element_located((By.ID, "result-error")))
    assert "age must be between 2 and 18" in browser.find_element(By.ID, "result-error").text


def test_login_leads_to_the_dashboard_with_its_panels(  # type: ignore[no-untyped-def]
    browser, app_url: str, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as seen
    from selenium.webdriver.support.ui import WebDriverWait

    drawing = tmp_path / "d.png"
    for age, anomalous in ((5, False), (12, True), (15, False)):
        drawing.write_bytes(drawing_bytes(age=age, seed=age, anomalous=anomalous))
        with drawing.open("rb") as handle:
            _post_upload(app_url, handle.read(), age)

    browser.get(f"{app_url}/dashboard")
    WebDriverWait(browser, 10).until(seen.url_contains("/login"))
    browser.find_element(By.ID, "password").send_keys("wrong")
    browser.find_element(By.ID, "login-submit").click()
    WebDriverWait(browser, 10).until(
        seen.text_to_be_present_in_element((By.ID, "login-error"), "Wrong password.")
    )
    browser.find_element(By.ID, "password").send_keys(ADMIN_PASSWORD)
    browser.find_element(By.ID, "login-submit").click()

    WebDriverWait(browser, 10).until(seen.url_contains("/dashboard"))
    for panel in ("panel-analyses", "panel-operations", "panel-groups", "panel-recent"):
        assert browser.find_element(By.ID, panel).is_displayed()
    assert browser.find_element(By.ID, "stat-total").text == "3"
    assert len(browser.find_elements(By.CSS_SELECTOR, "#panel-recent tbody tr")) == 3

    percentile = browser.find_element(By.ID, "threshold_percentile")
    percentile.clear()
    percentile.send_keys("90")
    browser.find_element(By.CSS_SELECTOR, "#config-form button").click()
    WebDriverWait(browser, 10).until(
        seen.text_to_be_present_in_element((By.ID, "config-status"), "Saved")
    )
    _screenshot(browser, tmp_path, "dashboard")

    browser.find_element(By.ID, "logout").click()
    WebDriverWait(browser, 10).until(seen.url_contains("/login"))
    browser.get(f"{app_url}/dashboard")
    assert "/login" in browser.current_url


def test_a_white_paper_drawing_is_typical_with_its_reasons_on_demo_and_dashboard(  # type: ignore[no-untyped-def]
    browser, app_url: str, tmp_path: Path
) -> None:
    """The packaged model (the app serves it: its models bucket is empty), a stick figure, a
    sun and grass drawn with thin black lines on pure-white paper."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as seen
    from selenium.webdriver.support.ui import WebDriverWait

    from tests.app.scoring.drawn_by_hand import drawing, png_bytes

    path = tmp_path / "stick figure.png"
    path.write_bytes(png_bytes(drawing("stick_figure", 800, paper="white")))
    browser.get(f"{app_url}/demo")
    browser.find_element(By.ID, "file").send_keys(str(path))
    age = browser.find_element(By.ID, "age")
    age.clear()
    age.send_keys("6")
    browser.find_element(By.ID, "submit").click()
    WebDriverWait(browser, 30).until(seen.visibility_of_element_located((By.ID, "result-body")))
    assert browser.find_element(By.ID, "verdict").text == "Typical for a child of this age"
    reasons = [item.text for item in browser.find_elements(By.CSS_SELECTOR, "#r-reasons li")]
    assert 1 <= len(reasons) <= 3 and all(reasons)
    _screenshot(browser, tmp_path, "demo-white-paper")

    browser.get(f"{app_url}/login")
    browser.find_element(By.ID, "password").send_keys(ADMIN_PASSWORD)
    browser.find_element(By.ID, "login-submit").click()
    WebDriverWait(browser, 10).until(seen.url_contains("/dashboard"))
    row = browser.find_element(By.CSS_SELECTOR, "#panel-recent tbody tr")
    assert "typical" in row.text and reasons[0] in row.text
    assert browser.find_element(By.ID, "stat-anomalies").text == "0"


def _post_upload(app_url: str, data: bytes, age: int) -> None:
    import httpx

    response = httpx.post(
        f"{app_url}/api/v1/drawings",
        files={"file": ("d.png", data, "image/png")},
        data={"age": str(age)},
        timeout=30,
    )
    assert response.status_code == 201, response.text


def _console_errors(driver) -> list[str]:  # type: ignore[no-untyped-def]
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def _csp_of(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return str(answer.headers["content-security-policy"])


@pytest.mark.offline
def test_api_docs_render_with_no_network_under_the_page_csp(  # type: ignore[no-untyped-def]
    browser, app_url: str, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as seen
    from selenium.webdriver.support.ui import WebDriverWait

    page_csp = _csp_of(f"{app_url}/demo")
    assert "script-src 'self';" in page_csp
    assert _csp_of(f"{app_url}/docs") == _csp_of(f"{app_url}/redoc") == page_csp

    browser.get(f"{app_url}/docs")
    upload = (By.CSS_SELECTOR, ".opblock-post .opblock-summary-path[data-path='/api/v1/drawings']")
    WebDriverWait(browser, 30).until(seen.visibility_of_element_located(upload))
    title = browser.find_element(By.CSS_SELECTOR, ".info .title").text
    assert title.startswith("Children's Drawing Anomaly Detection"), title
    assert _console_errors(browser) == []
    _screenshot(browser, tmp_path, "docs")

    browser.get(f"{app_url}/redoc")
    operation = (By.XPATH, "//h2[normalize-space()='Upload Drawing']")
    WebDriverWait(browser, 30).until(seen.visibility_of_element_located(operation))
    title = browser.find_element(By.TAG_NAME, "h1").text
    assert title.startswith("Children's Drawing Anomaly Detection"), title
    assert "/api/v1/drawings" in browser.find_element(By.TAG_NAME, "body").text
    # ReDoc tries an inline style (its scrollbar CSS, served by /static/docs/redoc-page.css
    # instead) and its vendor's logo from a CDN: both refused by the CSP, nothing else fails.
    unexpected = [e for e in _console_errors(browser) if "Content Security Policy" not in e]
    assert unexpected == []
    _screenshot(browser, tmp_path, "redoc")

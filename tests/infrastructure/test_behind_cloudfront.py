"""The app as production serves it (the image's gunicorn command) behind two local proxies that
rewrite each request exactly as CloudFront, with the template's origin request policy, and the
internal ALB do: a browser logs in, changes the configuration and uploads a drawing through
them, and one viewer's failed logins do not lock out another.

  viewer 127.0.0.5 ─▶ "CloudFront" 127.0.0.2 ─(VPC origin ENI 127.0.0.3)─▶ "ALB" 127.0.0.4 ─▶ app

CloudFront: the viewer's headers (Host only if the policy forwards it, else the origin's
domain), X-Forwarded-For with the viewer's IP appended, the policy's CloudFront headers
(CloudFront-Viewer-Address: ip:port, CloudFront-Forwarded-Proto), Via, X-Amz-Cf-Id.
ALB (HTTP listener, xff append mode, invalid header fields dropped): X-Forwarded-For with the
connecting IP appended, X-Forwarded-Proto http, X-Forwarded-Port 80, X-Amzn-Trace-Id.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from benchmarks.production_app import production_command, production_env
from tests.app.helpers import ADMIN_PASSWORD, drawing_bytes
from tests.infrastructure.cfn_model import REPO, Resolver
from tests.infrastructure.cloudfront_policies import MANAGED_ORIGIN_REQUEST_POLICIES
from tests.task_processes import free_port

pytestmark = pytest.mark.slow

VIEWER_HOST = "d111111abcdef8.cloudfront.net"
ALB_DNS_NAME = "internal-drawing-analysis-production-1234567890.eu-west-1.elb.amazonaws.com"
EDGE, VPC_ORIGIN_ENI, ALB_NODE = "127.0.0.2", "127.0.0.3", "127.0.0.4"
VIEWER, OTHER_VIEWER = "127.0.0.5", "127.0.0.6"
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
}
VALID_FIELD_NAME = re.compile(r"^[A-Za-z0-9-]+$")


@dataclass
class Hop:
    """One proxy: where it listens, where it forwards from which source address, and how it
    rewrites the headers. Keeps the last request it forwarded, for the test to look at."""

    listen: str
    upstream: tuple[str, int]
    source: str
    rewrite: Any
    forwarded: list[list[tuple[str, str]]] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    def start(self) -> int:
        hop = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_args: object) -> None:
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = [(k, v) for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP]
                headers = hop.rewrite(headers, self.client_address)
                hop.forwarded.append(headers)
                upstream = http.client.HTTPConnection(
                    *hop.upstream, timeout=60, source_address=(hop.source, 0)
                )
                upstream.putrequest(
                    self.command, self.path, skip_host=True, skip_accept_encoding=True
                )
                for name, value in headers:
                    upstream.putheader(name, value)
                upstream.endheaders(body or None)
                answer = upstream.getresponse()
                payload = answer.read()
                self.send_response_only(answer.status, answer.reason)
                for name, value in answer.getheaders():
                    if name.lower() not in HOP_BY_HOP | {"content-length"}:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                upstream.close()

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _forward

        self.server = ThreadingHTTPServer((self.listen, 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return int(self.server.server_address[1])

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


def without(headers: list[tuple[str, str]], *names: str) -> list[tuple[str, str]]:
    drop = {n.lower() for n in names}
    return [(k, v) for k, v in headers if k.lower() not in drop]


def appended(headers: list[tuple[str, str]], name: str, value: str) -> str:
    existing = [v for k, v in headers if k.lower() == name.lower()]
    return ", ".join([*existing, value])


def cloudfront(policy_id: str):  # type: ignore[no-untyped-def]
    policy = MANAGED_ORIGIN_REQUEST_POLICIES[policy_id]

    def rewrite(headers: list[tuple[str, str]], viewer: tuple[str, int]) -> list[tuple[str, str]]:
        ip, port = viewer
        host = next(v for k, v in headers if k.lower() == "host")
        out = without(headers, "Host", "X-Forwarded-For", "Via")
        out.insert(0, ("Host", host if policy.forwards_viewer_host else ALB_DNS_NAME))
        out.append(("X-Forwarded-For", appended(headers, "X-Forwarded-For", ip)))
        out.append(("Via", "2.0 0123456789abcdef0123456789abcdef.cloudfront.net (CloudFront)"))
        out.append(("X-Amz-Cf-Id", uuid.uuid4().hex))
        extra = {
            "CloudFront-Viewer-Address": f"{ip}:{port}",
            "CloudFront-Forwarded-Proto": "https",
            "CloudFront-Viewer-Http-Version": "2.0",
            "CloudFront-Viewer-Country": "NL",
        }
        out += [(name, value) for name, value in extra.items() if name in policy.cloudfront_headers]
        return out

    return rewrite


def application_load_balancer(
    headers: list[tuple[str, str]], client: tuple[str, int]
) -> list[tuple[str, str]]:
    out = [(k, v) for k, v in headers if VALID_FIELD_NAME.match(k)]
    out = without(out, "X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Port")
    out.append(("X-Forwarded-For", appended(headers, "X-Forwarded-For", client[0])))
    out += [
        ("X-Forwarded-Proto", "http"),
        ("X-Forwarded-Port", "80"),
        ("X-Amzn-Trace-Id", f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]}"),
    ]
    return out


def wait_for(url_host: str, port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the app exited with {process.returncode}: {log.read_text()}")
        try:
            connection = http.client.HTTPConnection(url_host, port, timeout=2)
            connection.request("GET", "/health")
            if connection.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"the app did not answer within 90 s: {log.read_text()}")


@pytest.fixture
def edge(tmp_path: Path) -> Iterator[tuple[int, Hop, Hop]]:
    """(viewer-facing port, CloudFront hop, ALB hop) in front of the app under gunicorn."""
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    moto.start()
    endpoint = f"http://127.0.0.1:{moto._port}"
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    for kind in ("drawings", "models", "backups"):
        s3.create_bucket(Bucket=f"acme-production-{kind}")
    app_port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "AWS_"))}
    env.update(production_env())
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        PYTHONPATH=str(REPO),
        ENVIRONMENT="production",
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        S3_BUCKET_DRAWINGS="acme-production-drawings",
        S3_BUCKET_MODELS="acme-production-models",
        S3_BUCKET_BACKUPS="acme-production-backups",
        DATABASE_PATH=str(tmp_path / "data" / "app.db"),
        OPS_STATE_PATH=str(tmp_path / "data" / "ops-state.db"),
        SCRATCH_DIR=str(tmp_path / "scratch"),
        ADMIN_PASSWORD=ADMIN_PASSWORD,
        SESSION_SECRET="s" * 64,
        ENABLE_METRICS="false",
        LOG_FORMAT="json",
    )
    (tmp_path / "data").mkdir(exist_ok=True)
    (tmp_path / "scratch").mkdir(exist_ok=True)
    log = tmp_path / "app.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            production_command(app_port), env=env, cwd=REPO, stdout=output, stderr=subprocess.STDOUT
        )
    config = Resolver().properties("Distribution")["DistributionConfig"]
    policy_id = config["DefaultCacheBehavior"]["OriginRequestPolicyId"]
    alb = Hop(ALB_NODE, ("127.0.0.1", app_port), ALB_NODE, application_load_balancer)
    hops: list[Hop] = [alb]
    try:
        wait_for("127.0.0.1", app_port, process, log)
        alb_port = alb.start()
        cdn = Hop(EDGE, (ALB_NODE, alb_port), VPC_ORIGIN_ENI, cloudfront(policy_id))
        hops.append(cdn)
        yield cdn.start(), cdn, alb
    finally:
        for hop in hops:
            hop.stop()
        process.terminate()
        process.wait(timeout=30)
        moto.stop()


class Browser:
    """A browser on https://VIEWER_HOST: sends Origin on writes and keeps its cookies (the
    session cookie is Secure; the viewer's side of CloudFront is HTTPS)."""

    def __init__(self, port: int, source: str) -> None:
        self.port, self.source = port, source
        self.cookies: dict[str, str] = {}

    def request(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        connection = http.client.HTTPConnection(
            EDGE, self.port, timeout=60, source_address=(self.source, 0)
        )
        sent = {"Host": VIEWER_HOST, "User-Agent": "Mozilla/5.0", **(headers or {})}
        if method != "GET":
            sent["Origin"] = f"https://{VIEWER_HOST}"
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        connection.request(method, path, body=body or None, headers=sent)
        answer = connection.getresponse()
        payload = answer.read()
        for header in answer.headers.get_all("Set-Cookie") or []:
            name, _, rest = header.partition("=")
            self.cookies[name] = rest.split(";", 1)[0]
        connection.close()
        return answer.status, dict(answer.headers.items()), payload

    def login(self, password: str) -> int:
        form = f"password={password.replace(' ', '+')}&next=%2Fdashboard".encode()
        status, _, _ = self.request(
            "POST", "/login", form, {"Content-Type": "application/x-www-form-urlencoded"}
        )
        return status


def multipart(fields: dict[str, str], file: tuple[str, bytes, str]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in fields.items()
    ]
    name, data, content_type = file
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n".encode()
        + data
        + b"\r\n"
    )
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), boundary


def test_a_browser_logs_in_configures_and_uploads_through_cloudfront_and_the_alb(
    edge: tuple[int, Hop, Hop],
) -> None:
    port, _, alb = edge
    browser = Browser(port, VIEWER)

    assert browser.login(ADMIN_PASSWORD) == 303, "login refused (is the viewer's Host forwarded?)"
    status, _, page = browser.request("GET", "/dashboard")
    assert status == 200
    token = re.search(rb'name="csrf-token" content="([^"]+)"', page)
    assert token, "no CSRF token on the dashboard"

    change = json.dumps({"dashboard_recent_count": 7}).encode()
    status, _, answer = browser.request(
        "PUT",
        "/api/v1/config",
        change,
        {"Content-Type": "application/json", "X-CSRF-Token": token[1].decode()},
    )
    assert status == 200, answer
    assert json.loads(answer)["dashboard_recent_count"] == 7

    body, boundary = multipart({"age": "7"}, ("house.png", drawing_bytes(), "image/png"))
    status, _, answer = browser.request(
        "POST",
        "/api/v1/drawings",
        body,
        {"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert status == 201, answer

    # What reached the app: the chain CloudFront and the ALB append, and the viewer address.
    arrived = dict(alb.forwarded[-1])
    assert arrived["Host"] == VIEWER_HOST
    assert arrived["X-Forwarded-For"] == f"{VIEWER}, {VPC_ORIGIN_ENI}"
    assert re.fullmatch(rf"{re.escape(VIEWER)}:\d+", arrived["CloudFront-Viewer-Address"])
    assert arrived["X-Forwarded-Proto"] == "http"


def test_a_viewer_locked_out_by_failed_logins_does_not_lock_out_another(
    edge: tuple[int, Hop, Hop],
) -> None:
    port, _, alb = edge
    attacker, admin = Browser(port, VIEWER), Browser(port, OTHER_VIEWER)
    # The attacker also sends a forged X-Forwarded-For naming the admin's address.
    statuses = []
    for _ in range(8):
        form = b"password=wrong&next=%2Fdashboard"
        status, _, _ = attacker.request(
            "POST",
            "/login",
            form,
            {
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Forwarded-For": OTHER_VIEWER,
            },
        )
        statuses.append(status)
    assert statuses[0] == 401 and statuses[-1] == 429, statuses
    chain = dict(alb.forwarded[-1])["X-Forwarded-For"]
    assert chain == f"{OTHER_VIEWER}, {VIEWER}, {VPC_ORIGIN_ENI}"
    assert admin.login(ADMIN_PASSWORD) == 303, "another viewer was locked out"

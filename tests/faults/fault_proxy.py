"""A fault-injecting HTTP proxy on loopback, between S3 clients and a local S3 endpoint.

Clients are pointed at the proxy (AWS_ENDPOINT_URL); it forwards each request to the
endpoint unless a `Fault` of the plan matches the request's S3 operation, in which case it
answers with an S3 error (500 InternalError, 503 SlowDown), resets the connection before
answering, or forwards the request and resets the connection halfway through the response
body. Works across processes: the task under test runs as `python -m tasks …`.
"""

from __future__ import annotations

import http.client
import socket
import struct
import threading
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

ERRORS = {
    "500": (500, "InternalError", "We encountered an internal error. Please try again."),
    "503": (503, "SlowDown", "Please reduce your request rate."),
}
KINDS = (*ERRORS, "reset", "reset-mid-body")
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade"}
CHUNK = 64 * 1024
ATOMIC = frozenset({"CompleteMultipartUpload", "PutObject"})


def s3_operation(method: str, target: str) -> str:
    """The S3 operation of a path-style request (the only style a loopback endpoint gets)."""
    parts = urlsplit(target)
    query = parse_qs(parts.query, keep_blank_values=True)
    has_key = "/" in parts.path.strip("/")
    if method == "POST" and "uploads" in query:
        return "CreateMultipartUpload"
    if method == "PUT" and "partNumber" in query:
        return "UploadPart"
    if method == "POST" and "uploadId" in query:
        return "CompleteMultipartUpload"
    if method == "DELETE" and "uploadId" in query:
        return "AbortMultipartUpload"
    if method == "GET" and "uploads" in query:
        return "ListMultipartUploads"
    if method == "GET" and not has_key:
        return "ListObjectsV2" if query.get("list-type") == ["2"] else "ListObjects"
    names = {"GET": "GetObject", "HEAD": "HeadObject", "PUT": "PutObject", "DELETE": "DeleteObject"}
    if parts.path.strip("/") == "":
        return "NotS3"  # the other services (CloudWatch, …) POST to the endpoint's root
    return names.get(method, method) if has_key else f"{method}Bucket"


@dataclass
class Fault:
    """The `times` requests of `operation` after the first `skip` ones get `kind`."""

    operation: str
    kind: str
    times: int
    skip: int = 0
    seen: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; choose from {KINDS}")

    def fires(self) -> bool:
        self.seen += 1
        return self.skip < self.seen <= self.skip + self.times


@dataclass
class FaultPlan:
    faults: list[Fault] = field(default_factory=list)
    injected: Counter[str] = field(default_factory=Counter)
    requests: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def decide(self, operation: str) -> str | None:
        with self._lock:
            self.requests[operation] += 1
            # Every fault of the operation counts the request; the first that fires wins.
            firing = [f for f in self.faults if f.operation == operation and f.fires()]
            if not firing:
                return None
            self.injected[f"{operation} {firing[0].kind}"] += 1
            return firing[0].kind

    def replace(self, *faults: Fault) -> None:
        with self._lock:
            self.faults = list(faults)
            self.injected.clear()
            self.requests.clear()

    @property
    def total_injected(self) -> int:
        return sum(self.injected.values())


def _reset(sock: socket.socket) -> None:
    """Close with an RST instead of a FIN: the client sees 'connection reset by peer'."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FaultProxy

    def log_message(self, format: str, *args: object) -> None:
        return

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        body = self._body()
        operation = s3_operation(self.command, self.path)
        kind = self.server.plan.decide(operation)
        if kind == "reset":
            self.close_connection = True
            _reset(self.connection)
            return
        if kind in ERRORS:
            self._send_error(*ERRORS[kind])
            return
        if operation in ATOMIC:
            with self.server.atomic:
                self._forward(body, cut_body=kind == "reset-mid-body")
        else:
            self._forward(body, cut_body=kind == "reset-mid-body")

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

    def _send_error(self, status: int, code: str, message: str) -> None:
        payload = (
            f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
            f"<Message>{message}</Message><RequestId>fault-proxy</RequestId></Error>"
        ).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _forward(self, body: bytes, cut_body: bool) -> None:
        upstream = http.client.HTTPConnection(self.server.upstream_host, self.server.upstream_port)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            if body or self.command in ("PUT", "POST"):
                headers["Content-Length"] = str(len(body))
            upstream.request(self.command, self.path, body=body, headers=headers)
            response = upstream.getresponse()
            self.send_response_only(response.status, response.reason)
            length = response.getheader("Content-Length")
            for name, value in response.getheaders():
                if name.lower() not in HOP_BY_HOP and name.lower() != "content-length":
                    self.send_header(name, value)
            data = b"" if length is not None else response.read()
            self.send_header("Content-Length", length if length is not None else str(len(data)))
            self.end_headers()
            if self.command == "HEAD":
                return
            if length is None:
                self.wfile.write(data)
                return
            self._stream(response, int(length), cut_body)
        finally:
            upstream.close()

    def _stream(self, response: http.client.HTTPResponse, length: int, cut_body: bool) -> None:
        limit = length // 2 if cut_body else length
        sent = 0
        while sent < limit:
            chunk = response.read(min(CHUNK, limit - sent))
            if not chunk:
                break
            self.wfile.write(chunk)
            sent += len(chunk)
        if cut_body:
            self.wfile.flush()
            self.close_connection = True
            _reset(self.connection)


class FaultProxy(ThreadingHTTPServer):
    """`with FaultProxy(upstream_url) as proxy:` — proxy.url for clients, proxy.plan to fail."""

    daemon_threads = True

    def __init__(self, upstream_url: str) -> None:
        upstream = urlsplit(upstream_url)
        self.upstream_host = upstream.hostname or "127.0.0.1"
        self.upstream_port = upstream.port or 80
        self.plan = FaultPlan()
        self.atomic = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)
        self._thread = threading.Thread(target=self.serve_forever, name="fault-proxy", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()

"""ASGI middleware: request body limits (whatever Content-Length says, and in time), the bound
on uploads in progress, security headers, and the re-signed admin session cookie."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

UPLOAD_PATH = "/api/v1/drawings"
MULTIPART_OVERHEAD_BYTES = 64 * 1024
SMALL_BODY_BYTES = 64 * 1024
STATE_SET_COOKIE = "set_cookie_headers"
BUSY_RETRY_AFTER_S = 5

SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
]
# Every page, /docs and /redoc included, uses only this origin. The one hash is that of an
# empty <style> element: ReDoc (styled-components) creates one and fills it through the CSSOM,
# which the CSP does not govern; inline style with any content stays refused.
EMPTY_STYLE_HASH = b"'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='"
PAGE_CSP = (
    b"default-src 'self'; img-src 'self' data: blob:; style-src 'self' " + EMPTY_STYLE_HASH + b"; "
    b"script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body too large: the limit is {_describe(limit)}")


def _describe(limit: int) -> str:
    return f"{limit / (1024 * 1024):.0f} MB" if limit >= 1024 * 1024 else f"{limit // 1024} KB"


class BodyTooSlow(HTTPException):
    def __init__(self, seconds: float) -> None:
        super().__init__(
            408,
            f"request body not received within {seconds:g} s",
            headers={"Connection": "close"},
        )


class BodyLimitMiddleware:
    """Refuses a body above its limit: at once when Content-Length announces it, otherwise as
    soon as the bytes read pass it (a lying or absent Content-Length changes nothing); and a
    body that has not arrived whole `body_seconds` after the request began (a trickle)."""

    def __init__(
        self, app: ASGIApp, upload_limit: Callable[[], int], body_seconds: float = 30.0
    ) -> None:
        self.app = app
        self.upload_limit = upload_limit
        self.body_seconds = body_seconds

    def limit_for(self, scope: Scope) -> int:
        if scope["path"] == UPLOAD_PATH:
            return self.upload_limit() + MULTIPART_OVERHEAD_BYTES
        return SMALL_BODY_BYTES

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await _send_json(send, 413, BodyTooLarge(limit).detail)
            return
        received = 0
        complete = False
        deadline = time.monotonic() + self.body_seconds

        async def limited_receive() -> Message:
            nonlocal received, complete
            if complete:  # what follows the body (a disconnect) is not bounded here
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), deadline - time.monotonic())
            except TimeoutError:
                raise BodyTooSlow(self.body_seconds) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
                complete = not message.get("more_body", False)
            return message

        await self.app(scope, limited_receive, send)


class UploadAdmission:
    """At most `limit` uploads in progress (body arriving, waiting for an analysis slot, or
    being analysed); one more is answered 503 with Retry-After. Its body is read and thrown
    away first (up to the upload limit, within the body time): a client still sending when
    the connection closes would see a reset, not the answer."""

    def __init__(
        self,
        app: ASGIApp,
        limit: int,
        discard_bytes: Callable[[], int] = lambda: 0,
        body_seconds: float = 30.0,
    ) -> None:
        self.app = app
        self.limit = limit
        self.discard_bytes = discard_bytes
        self.body_seconds = body_seconds
        self.in_progress = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != UPLOAD_PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        if self.in_progress >= self.limit:
            await self._discard_body(receive)
            await _send_json(
                send,
                503,
                "too many uploads in progress; try again shortly",
                [(b"retry-after", str(BUSY_RETRY_AFTER_S).encode())],
            )
            return
        self.in_progress += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_progress -= 1

    async def _discard_body(self, receive: Receive) -> None:
        budget = self.discard_bytes() + MULTIPART_OVERHEAD_BYTES
        deadline = time.monotonic() + self.body_seconds
        while budget >= 0:
            try:
                message = await asyncio.wait_for(receive(), deadline - time.monotonic())
            except TimeoutError:
                return
            if message["type"] != "http.request":
                return
            budget -= len(message.get("body", b""))
            if not message.get("more_body", False):
                return


class ResponseHeadersMiddleware:
    """Adds the security headers, and any Set-Cookie a dependency left in the request state."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                extra = [*SECURITY_HEADERS, (b"content-security-policy", PAGE_CSP)]
                headers += [(n, v) for n, v in extra if n not in present]
                state: dict[str, Any] = scope.get("state") or {}
                for cookie in state.get(STATE_SET_COOKIE, []):
                    headers.append((b"set-cookie", cookie.encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def _send_json(
    send: Send, status: int, detail: str, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
                *(extra or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})

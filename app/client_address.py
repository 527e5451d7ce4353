"""The client's address as our own proxies saw it, never an entry the client wrote.

In production the chain is viewer → CloudFront → load balancer → app. CloudFront appends the
viewer's address to whatever X-Forwarded-For the viewer sent, the load balancer appends
CloudFront's, so the last `TRUSTED_PROXY_HOPS` (2) entries are written by our proxies and
the one they start with is the viewer. Entries further left are the client's own words. With
fewer entries than hops (a request that skipped a proxy) the left-most one is taken, which a
proxy wrote. `TRUSTED_PROXY_HOPS=0` (local runs, no proxy): the TCP peer, X-Forwarded-For
ignored. The address replaces `scope["client"]`, so everything after sees only this one.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

MAX_ADDRESS_CHARS = 64


def forwarded_entries(headers: list[tuple[bytes, bytes]]) -> list[str]:
    """Every X-Forwarded-For entry, in order, across repeated headers."""
    entries: list[str] = []
    for name, value in headers:
        if name.lower() == b"x-forwarded-for":
            text = value.decode("latin-1")
            entries += [item.strip() for item in text.split(",") if item.strip()]
    return entries


def client_address(peer: str | None, entries: list[str], trusted_hops: int) -> str:
    if trusted_hops == 0 or not entries:
        return peer or "unknown"
    return entries[max(0, len(entries) - trusted_hops)][:MAX_ADDRESS_CHARS]


class ClientAddressMiddleware:
    def __init__(self, app: ASGIApp, trusted_hops: int) -> None:
        self.app = app
        self.trusted_hops = trusted_hops

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            peer = scope.get("client")
            address = client_address(
                peer[0] if peer else None, forwarded_entries(scope["headers"]), self.trusted_hops
            )
            scope = {**scope, "client": (address, 0)}
        await self.app(scope, receive, send)

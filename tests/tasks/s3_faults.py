"""botocore event hooks that make S3 misbehave on cue, for fault tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from botocore.awsrequest import AWSResponse


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


def error_response(status: int, code: str, message: str) -> AWSResponse:
    body = (
        f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
        f"<Message>{message}</Message><RequestId>test</RequestId></Error>"
    ).encode()
    return AWSResponse("https://s3.test/", status, {"Content-Type": "application/xml"}, _Raw(body))


def on_operation(
    client: Any, operation: str, respond: Callable[[int], AWSResponse | None]
) -> list[int]:
    """Before `operation` is sent, call respond(n) (n = 1, 2, …): a response, None to pass, or
    raise. Registered first, so it wins over moto's own stub. Returns the list of calls seen."""
    calls: list[int] = []

    def hook(request: Any, **_: Any) -> AWSResponse | None:
        calls.append(len(calls) + 1)
        return respond(len(calls))

    client.meta.events.register_first(f"before-send.s3.{operation}", hook)
    return calls

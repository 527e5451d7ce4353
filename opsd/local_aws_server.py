"""moto's server as the embedded AWS endpoint, with bucket-policy conditions evaluated.

moto treats every bucket-policy statement that carries a Condition as an unconditional
Deny, so the storage policy's TLS-only statement would refuse every object read. The
endpoint speaks only HTTPS, so each request comes with `aws:SecureTransport = true`; this
evaluates conditions against that context and leaves the rest of moto as it is.

With `--state FILE` the endpoint loads what it saved there at its last run and saves again
after changes and when it stops (opsd/local_aws_state.py); with `--parent-pid PID` it stops by
itself, saving, when that process is gone (a killed `opsd run` leaves no endpoint behind).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from moto.iam.access_control import IAMPolicyStatement, PermissionResult
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from moto.s3.models import FakeBucket
from werkzeug.serving import run_simple

from opsd.local_aws_state import StateKeeper, load

REQUEST_CONTEXT = {"aws:SecureTransport": "true"}


def conditions_hold(conditions: dict[str, Any]) -> bool:
    """Bool conditions on the request context; any other operator is taken to hold."""
    for operator, tests in conditions.items():
        if operator not in ("Bool", "BoolIfExists"):
            continue
        for key, expected in tests.items():
            actual = REQUEST_CONTEXT.get(key)
            if actual is None:
                if operator == "Bool":
                    return False
                continue
            wanted = expected if isinstance(expected, list) else [expected]
            if actual not in [str(value).lower() for value in wanted]:
                return False
    return True


def bucket_permission(bucket: FakeBucket, action: str, resource: str) -> PermissionResult:
    if bucket.policy is None:
        return PermissionResult.NEUTRAL
    statements = json.loads(bucket.policy.decode())["Statement"]
    if isinstance(statements, dict):
        statements = [statements]
    result = PermissionResult.NEUTRAL
    for statement in statements:
        if "Condition" in statement and not conditions_hold(statement["Condition"]):
            continue
        plain = {key: value for key, value in statement.items() if key != "Condition"}
        permission = IAMPolicyStatement(plain).is_action_permitted(action, resource)
        if permission == PermissionResult.DENIED:
            return permission
        if permission == PermissionResult.PERMITTED:
            result = permission
    return result


FakeBucket.get_permission = bucket_permission  # type: ignore[method-assign]

READ_ONLY_METHODS = ("GET", "HEAD", "OPTIONS")
WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def remembering(app: WsgiApp, keeper: StateKeeper) -> WsgiApp:
    """`app`, with each request under the keeper's shared lock and changes reported to it."""

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        with keeper.lock.shared():
            answer = app(environ, start_response)
            try:
                body = list(answer)
            finally:
                close = getattr(answer, "close", None)
                if close is not None:
                    close()
        if environ.get("REQUEST_METHOD") not in READ_ONLY_METHODS:
            keeper.changed()  # read-only actions of the query protocols are POSTs too
        return body

    return wrapped


def stop_when_orphaned(parent_pid: int, interval_s: float = 1.0) -> None:
    def watch() -> None:
        while os.getppid() == parent_pid:
            threading.Event().wait(interval_s)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, daemon=True).start()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m opsd.local_aws_server")
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    parser.add_argument("-c", "--ssl-cert", required=True)
    parser.add_argument("-k", "--ssl-key", required=True)
    parser.add_argument("--state", type=Path, help="file to load the state from and save it to")
    parser.add_argument("--parent-pid", type=int, help="stop when this process is gone")
    args = parser.parse_args(argv)
    os.environ.setdefault("MOTO_PORT", str(args.port))
    app: WsgiApp = DomainDispatcherApplication(create_backend_app)
    keeper: StateKeeper | None = None
    if args.state is not None:
        load(args.state)
        keeper = StateKeeper(args.state)
        keeper.start()
        app = remembering(app, keeper)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if keeper is not None:
            keeper.stop()
        sys.exit(0)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if args.parent_pid is not None:
        stop_when_orphaned(args.parent_pid)
    run_simple(
        args.host,
        args.port,
        app,
        threaded=True,
        ssl_context=(args.ssl_cert, args.ssl_key),
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()

"""moto's server as the embedded AWS endpoint, with bucket-policy conditions evaluated.

moto treats every bucket-policy statement that carries a Condition as an unconditional
Deny, so the storage policy's TLS-only statement would refuse every object read. The
endpoint speaks only HTTPS, so each request comes with `aws:SecureTransport = true`; this
evaluates conditions against that context and leaves the rest of moto as it is.
Run as `python -m opsd.local_aws_server` with moto.server's arguments.
"""

from __future__ import annotations

import json
from typing import Any

from moto.iam.access_control import IAMPolicyStatement, PermissionResult
from moto.s3.models import FakeBucket
from moto.server import main

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

if __name__ == "__main__":
    main()

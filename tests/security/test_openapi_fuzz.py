"""schemathesis against the app's own OpenAPI schema: no generated request gets a 5xx.

Admin operations are fuzzed with an admin session and its CSRF token, so that the fuzzing
reaches past the login check. Examples per operation: SCHEMATHESIS_EXAMPLES, else 20 under
CI=true and 100 otherwise."""

from __future__ import annotations

from collections import Counter

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings

from tests.faults.figures import record_figure
from tests.task_processes import trials

pytestmark = pytest.mark.slow
EXAMPLES = trials(full=100, under_ci=20, variable="SCHEMATHESIS_EXAMPLES")


def test_no_generated_request_gets_a_server_error(
    admin_client: TestClient, request: pytest.FixtureRequest
) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", admin_client.app)
    token = admin_client.headers["X-CSRF-Token"]
    cookies = dict(admin_client.cookies.items())
    statuses: Counter[int] = Counter()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 4, [op.label for op in operations]
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def no_server_error(case) -> None:  # type: ignore[no-untyped-def]
            response = case.call(headers={"X-CSRF-Token": token}, cookies=cookies)
            statuses[response.status_code] += 1
            assert response.status_code < 500, (
                f"{case.method} {case.formatted_path}: {response.status_code} {response.text[:300]}"
            )

        no_server_error()
    assert statuses[200] + statuses[201] > 0, statuses  # past validation and the login
    record_figure(
        request.config,
        "security",
        f"schemathesis: {len(operations)} operations, {sum(statuses.values())} requests, "
        f"statuses {dict(sorted(statuses.items()))}, 5xx: 0",
    )

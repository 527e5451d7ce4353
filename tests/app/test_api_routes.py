"""The API's published operations: every path, method and tag of /openapi.json."""

from __future__ import annotations

from fastapi.testclient import TestClient

OPERATIONS = {
    ("get", "/health", ("public",)),
    ("post", "/api/v1/drawings", ("public",)),
    ("get", "/api/v1/analyses/{public_id}", ("public",)),
    ("get", "/api/v1/admin/analyses/{analysis_id}", ("admin",)),
    ("delete", "/api/v1/sessions", ("admin",)),
    ("get", "/api/v1/config", ("admin",)),
    ("put", "/api/v1/config", ("admin",)),
}


def test_openapi_lists_the_same_operations_with_their_tags(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    published = {
        (method, path, tuple(operation.get("tags", ())))
        for path, methods in schema["paths"].items()
        for method, operation in methods.items()
    }
    assert published == OPERATIONS

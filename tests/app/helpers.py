"""Helpers of the app tests: drawings as bytes, logging in, looking into the bucket."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from PIL import Image
from starlette.routing import Mount, Route

from app.scoring.synthetic import generate_drawing
from opsd.aws import AwsClients

ADMIN_PASSWORD = "correct horse battery staple"


def login(client: TestClient, password: str = ADMIN_PASSWORD) -> str:
    """Log `client` in; its CSRF token."""
    response = client.post(
        "/login", data={"password": password, "next": "/dashboard"}, follow_redirects=False
    )
    assert response.status_code == 303, response.text
    page = client.get("/dashboard")
    assert page.status_code == 200
    marker = 'name="csrf-token" content="'
    start = page.text.index(marker) + len(marker)
    return page.text[start : page.text.index('"', start)]


def drawing_bytes(
    age: int = 6, size: int = 256, fmt: str = "PNG", seed: int = 1, anomalous: bool = False
) -> bytes:
    image = generate_drawing(age, np.random.default_rng(seed), size=size, anomalous=anomalous)
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format=fmt)
    return buffer.getvalue()


def image_bytes(width: int, height: int, fmt: str = "PNG", colour: str = "white") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, format=fmt)
    return buffer.getvalue()


def bucket_keys(aws: AwsClients, bucket: str) -> list[str]:
    """Every object version and delete marker: nothing half-written may hide among them."""
    answer = aws("s3").list_object_versions(Bucket=bucket)
    versions = answer.get("Versions", []) + answer.get("DeleteMarkers", [])
    return sorted(item["Key"] for item in versions)


def route_table(routes: list[Any], prefix: str = "") -> set[tuple[str, str]]:
    """(method, path) of every route, looking into included routers: FastAPI ≥ 0.165 lists
    an included router as one opaque entry (its `original_router` holds the routes)."""
    found = set()
    for route in routes:
        if isinstance(route, APIRoute | Route):
            found |= {(m, prefix + route.path) for m in (route.methods or set()) - {"HEAD"}}
        elif isinstance(route, Mount):
            found.add(("GET", f"{prefix}{route.path}/{{path}}"))
        elif hasattr(route, "original_router"):
            inner = getattr(getattr(route, "include_context", None), "prefix", "") or ""
            found |= route_table(route.original_router.routes, prefix + inner)
        else:
            raise AssertionError(f"unknown kind of route {route!r}: teach route_table about it")
    return found

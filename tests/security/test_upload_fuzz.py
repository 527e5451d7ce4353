"""Malformed images through the upload endpoint (hypothesis): a refused upload leaves no row
and no object behind, and never crashes the worker; the app keeps serving afterwards."""

from __future__ import annotations

import sqlite3

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.settings import AppSettings
from opsd.aws import AwsClients
from tests.app.helpers import bucket_keys, drawing_bytes, image_bytes
from tests.task_processes import trials

EXAMPLES = trials(full=300, under_ci=40, variable="UPLOAD_FUZZ_EXAMPLES")
SEEDS = [image_bytes(64, 64, fmt) for fmt in ("PNG", "JPEG", "BMP")] + [drawing_bytes(size=96)]
REFUSALS = {413, 415, 422}


@st.composite
def malformed_images(draw: st.DrawFn) -> bytes:
    """A real image cut short, with bytes overwritten, or with junk spliced in."""
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        action = draw(st.sampled_from(["truncate", "overwrite", "insert"]))
        position = draw(st.integers(0, max(0, len(data) - 1)))
        if action == "truncate":
            del data[max(1, position) :]
        elif action == "overwrite":
            chunk = draw(st.binary(min_size=1, max_size=16))
            data[position : position + len(chunk)] = chunk
        else:
            data[position:position] = draw(st.binary(min_size=1, max_size=64))
    return bytes(data)


def analysis_rows(settings: AppSettings) -> int:
    conn = sqlite3.connect(settings.database_path)
    try:
        return int(conn.execute("SELECT count(*) FROM analyses").fetchone()[0])
    finally:
        conn.close()


@pytest.mark.slow
@given(data=malformed_images(), age=st.integers(2, 18))
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_malformed_images_leave_nothing_behind_and_never_crash_the_worker(
    client: TestClient, app_settings: AppSettings, aws: AwsClients, data: bytes, age: int
) -> None:
    rows = analysis_rows(app_settings)
    objects = bucket_keys(aws, app_settings.s3_bucket_drawings)
    response = client.post(
        "/api/v1/drawings", files={"file": ("x.png", data, "image/png")}, data={"age": str(age)}
    )
    if response.status_code == 201:  # the damage missed the pixels that matter
        assert analysis_rows(app_settings) == rows + 1
        assert len(bucket_keys(aws, app_settings.s3_bucket_drawings)) == len(objects) + 1
    else:
        assert response.status_code in REFUSALS, (response.status_code, response.text)
        assert "\n" not in response.json()["detail"]
        assert analysis_rows(app_settings) == rows
        assert bucket_keys(aws, app_settings.s3_bucket_drawings) == objects
    assert client.get("/health").status_code == 200

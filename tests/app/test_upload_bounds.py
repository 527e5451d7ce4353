"""What an upload may hold: a bounded number in progress (503 + Retry-After beyond), a body
that must arrive in time, an image decoded at the reduced size the features need."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from app.middleware import BodyLimitMiddleware, UploadAdmission
from app.scoring import extract_features
from app.services import AnalysisBusy, AnalysisSlots
from app.settings import AppSettings
from app.uploads import ANALYSIS_SIDE, decode_drawing
from opsd.aws import AwsClients
from tests.app.helpers import bucket_keys, drawing_bytes

MB = 1024 * 1024


def upload_scope() -> dict[str, Any]:
    return {"type": "http", "path": "/api/v1/drawings", "method": "POST", "headers": []}


async def _ok(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 201, "headers": []})
    await send({"type": "http.response.body", "body": b""})


def test_uploads_beyond_the_bound_get_503_with_retry_after_and_never_reach_the_app() -> None:
    release = asyncio.Event()
    statuses: list[tuple[int, dict[bytes, bytes]]] = []
    reached: list[str] = []
    drained: list[int] = []

    async def held(scope: Any, receive: Any, send: Any) -> None:
        reached.append(scope["path"])
        await release.wait()
        await _ok(scope, receive, send)

    async def admitted_body() -> dict[str, Any]:
        raise AssertionError("the held app does not read its body")

    async def refused_body() -> dict[str, Any]:  # read and dropped, so the client sees 503
        drained.append(1)
        return {"type": "http.request", "body": b"x" * 1000, "more_body": len(drained) < 3}

    async def run() -> None:
        admission = UploadAdmission(held, limit=2, discard_bytes=lambda: MB)

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                statuses.append((message["status"], dict(message["headers"])))

        first = asyncio.create_task(admission(upload_scope(), admitted_body, send))
        second = asyncio.create_task(admission(upload_scope(), admitted_body, send))
        await asyncio.sleep(0.01)
        await admission(upload_scope(), refused_body, send)  # the third, refused at once
        release.set()
        await asyncio.gather(first, second)
        assert admission.in_progress == 0

    asyncio.run(run())
    assert statuses[0][0] == 503 and int(statuses[0][1][b"retry-after"]) > 0
    assert statuses[0][1][b"connection"] == b"close"
    assert len(drained) == 3 and len(reached) == 2
    assert [status for status, _ in statuses[1:]] == [201, 201]


def test_a_trickling_body_is_cut_off_with_408_and_connection_close() -> None:
    sent: list[dict[str, Any]] = []

    async def reads_body(scope: Any, receive: Any, send: Any) -> None:
        while (await receive()).get("more_body"):
            pass

    async def trickle() -> dict[str, Any]:
        await asyncio.sleep(0.05)
        return {"type": "http.request", "body": b"x", "more_body": True}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    middleware = BodyLimitMiddleware(reads_body, upload_limit=lambda: MB, body_seconds=0.3)
    with pytest.raises(Exception) as raised:
        asyncio.run(asyncio.wait_for(middleware(upload_scope(), trickle, send), 5))
    assert getattr(raised.value, "status_code", None) == 408
    assert raised.value.headers == {"Connection": "close"}  # type: ignore[attr-defined]


def test_an_upload_that_waits_too_long_for_a_slot_gets_503_and_stores_nothing(
    client: TestClient, aws: AwsClients, app_settings: AppSettings
) -> None:
    services = client.app.state.services  # type: ignore[attr-defined]
    services.analysis_slots = AnalysisSlots(1, 0.2)

    async def hold_the_only_slot() -> None:
        async with services.analysis_slots.slot():
            response = await asyncio.to_thread(
                client.post,
                "/api/v1/drawings",
                files={"file": ("d.png", drawing_bytes(), "image/png")},
                data={"age": "7"},
            )
            assert response.status_code == 503
            assert int(response.headers["retry-after"]) > 0
            assert response.json()["detail"] == "too many uploads in progress; try again shortly"

    # The slot belongs to the app's event loop: take it there.
    client.portal.call(hold_the_only_slot)  # type: ignore[union-attr]
    assert bucket_keys(aws, app_settings.s3_bucket_drawings) == []


def test_analysis_slots_time_out() -> None:
    async def run() -> None:
        slots = AnalysisSlots(1, 0.05)
        async with slots.slot():
            with pytest.raises(AnalysisBusy):
                async with slots.slot():
                    pass
        async with slots.slot():  # free again
            pass

    asyncio.run(run())


def encoded(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def held_size(fmt: str, size: tuple[int, int]) -> tuple[int, int]:
    """What the features need: JPEG's draft scales by 1/2, 1/4 or 1/8; reduce by any factor,
    neither below ANALYSIS_SIDE on the shorter side."""
    if fmt == "JPEG":
        scale = max(s for s in (1, 2, 4, 8) if min(size) // s >= ANALYSIS_SIDE or s == 1)
    else:
        scale = max(1, min(size) // ANALYSIS_SIDE)
    return (-(-size[0] // scale), -(-size[1] // scale))


@pytest.mark.parametrize(
    ("mode", "fmt", "size"),
    [
        ("RGB", "JPEG", (4096, 4096)),
        ("RGB", "JPEG", (4096, 2048)),
        ("RGB", "PNG", (4096, 4096)),
        ("RGBA", "PNG", (2048, 4096)),
        ("P", "PNG", (4096, 4096)),
        ("I;16", "PNG", (4096, 4096)),
        ("1", "BMP", (4096, 4096)),
        ("RGB", "PNG", (600, 600)),  # small: as it is
    ],
)
def test_large_images_are_held_at_the_reduced_size_the_features_need(
    mode: str, fmt: str, size: tuple[int, int]
) -> None:
    data = encoded(Image.new(mode, size), fmt)

    checked = decode_drawing(data, 10 * MB, 32, 4096 * 4096)

    assert (checked.width, checked.height) == size
    held = checked.image.size
    assert held == held_size(fmt, size)
    assert min(held) < 2 * ANALYSIS_SIDE or min(size) < 2 * ANALYSIS_SIDE
    assert len(extract_features(checked.image)) > 0


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_reduced_decoding_scores_like_the_full_image(fmt: str) -> None:
    data = drawing_bytes(age=9, size=2048, fmt=fmt, seed=4)
    full = Image.open(io.BytesIO(data))
    full.load()

    reduced = decode_drawing(data, 10 * MB, 32, 4096 * 4096).image

    assert reduced.size == held_size(fmt, full.size) and reduced.size < full.size
    difference = np.abs(extract_features(reduced) - extract_features(full))
    assert float(difference.max()) < 0.05, difference

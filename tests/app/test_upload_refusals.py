"""Hostile uploads: every refusal is a one-line JSON error and leaves nothing behind."""

from __future__ import annotations

import io
import sqlite3
import struct
import zlib
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from app.settings import AppSettings
from app.uploads import UploadRefused, decode_drawing, display_filename, sniff_kind
from opsd.aws import AwsClients
from tests.app.helpers import bucket_keys, drawing_bytes, image_bytes

MB = 1024 * 1024


def huge_png_header(width: int, height: int) -> bytes:
    """A small PNG file whose header announces `width` x `height` pixels (a bomb's shape)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (width + 1) * 4)  # a few rows; the rest is "missing"
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
    )


@pytest.fixture
def nothing_left_behind(
    client: TestClient, aws: AwsClients, app_settings: AppSettings
) -> Iterator[None]:
    yield
    assert bucket_keys(aws, app_settings.s3_bucket_drawings) == []
    with sqlite3.connect(app_settings.database_path) as conn:
        assert conn.execute("SELECT count(*) FROM drawings").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM analyses").fetchone()[0] == 0


def post(client: TestClient, data: bytes, age: str = "7", name: str = "x.png"):
    return client.post(
        "/api/v1/drawings", files={"file": (name, data, "image/png")}, data={"age": age}
    )


def one_line_refusal(response, status: int) -> str:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"detail"} and isinstance(body["detail"], str)
    assert "\n" not in body["detail"]
    return body["detail"]


@pytest.mark.usefixtures("nothing_left_behind")
@pytest.mark.parametrize(
    ("data", "status", "words"),
    [
        (b"GIF89a" + b"\x00" * 100, 415, "only PNG, JPEG and BMP"),
        (b"%PDF-1.7 not an image at all", 415, "only PNG, JPEG and BMP"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", 415, "only PNG, JPEG and BMP"),
        (b"", 422, "empty"),
        (b"\x89PNG\r\n\x1a\n" + b"garbage" * 20, 422, "cannot be"),
        (drawing_bytes()[:400], 422, "cannot be decoded"),
        (image_bytes(31, 200), 422, "too small"),
        (image_bytes(200, 16, fmt="BMP"), 422, "too small"),
        (huge_png_header(5_000, 5_000), 413, "5000x5000 pixels is more than"),
        (huge_png_header(20_000, 20_000), 413, "too large"),
        (huge_png_header(100_000, 100_000), 413, "too large"),
    ],
    ids=[
        "gif",
        "pdf",
        "svg",
        "empty",
        "png-garbage",
        "truncated",
        "narrow",
        "flat-bmp",
        "25-megapixels",
        "400-megapixels",
        "bomb",
    ],
)
def test_bad_files_are_refused_with_a_clear_reason(
    client: TestClient, data: bytes, status: int, words: str
) -> None:
    assert words in one_line_refusal(post(client, data), status)


@pytest.mark.usefixtures("nothing_left_behind")
@pytest.mark.parametrize("age", ["1", "19", "-3", "seven", "6.5", ""])
def test_ages_outside_2_to_18_are_refused_with_422(client: TestClient, age: str) -> None:
    detail = one_line_refusal(post(client, drawing_bytes(), age=age), 422)
    assert "age" in detail


@pytest.mark.usefixtures("nothing_left_behind")
def test_an_upload_without_a_file_is_refused(client: TestClient) -> None:
    response = client.post("/api/v1/drawings", data={"age": "7"})
    assert one_line_refusal(response, 422) == "file: Field required"


@pytest.mark.usefixtures("nothing_left_behind")
def test_a_file_over_10_mb_is_refused_with_413(client: TestClient) -> None:
    too_big = drawing_bytes() + b"\x00" * (10 * MB)
    assert "too large" in one_line_refusal(post(client, too_big), 413)


@pytest.mark.usefixtures("nothing_left_behind")
def test_a_lying_content_length_does_not_let_a_large_body_through(client: TestClient) -> None:
    boundary = "b0undary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="age"\r\n\r\n7\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n'
            f"Content-Type: image/png\r\n\r\n"
        ).encode()
        + drawing_bytes()
        + b"\x00" * (11 * MB)
        + f"\r\n--{boundary}--\r\n".encode()
    )

    def chunks() -> Iterator[bytes]:  # streamed: no Content-Length at all
        for start in range(0, len(body), MB):
            yield body[start : start + MB]

    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    streamed = client.post("/api/v1/drawings", content=chunks(), headers=headers)
    assert "too large" in one_line_refusal(streamed, 413)

    lying = client.post(
        "/api/v1/drawings", content=chunks(), headers={**headers, "Content-Length": "1000"}
    )
    assert "too large" in one_line_refusal(lying, 413)


@pytest.mark.usefixtures("nothing_left_behind")
def test_an_announced_oversized_body_is_refused_before_it_is_read(client: TestClient) -> None:
    response = client.post(
        "/api/v1/drawings",
        content=b"tiny",
        headers={"Content-Type": "multipart/form-data; boundary=x", "Content-Length": "999999999"},
    )
    assert "request body too large" in one_line_refusal(response, 413)


def test_the_type_comes_from_the_bytes_not_the_name(client: TestClient) -> None:
    jpeg_named_png = post(client, drawing_bytes(fmt="JPEG"), name="photo.png")
    assert jpeg_named_png.status_code == 201
    with pytest.raises(UploadRefused):
        sniff_kind(b"GIF89a")


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "BMP"])
def test_png_jpeg_and_bmp_decode(fmt: str) -> None:
    checked = decode_drawing(drawing_bytes(fmt=fmt), 10 * MB, 32, 4096 * 4096)
    assert checked.kind.pillow_format == fmt
    assert (checked.width, checked.height) == (256, 256)


def test_palette_and_transparent_images_are_accepted() -> None:
    buffer = io.BytesIO()
    Image.new("RGBA", (64, 64), (0, 0, 0, 0)).convert("P").save(buffer, "PNG")
    assert decode_drawing(buffer.getvalue(), MB, 32, 10**6).kind.extension == "png"


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\drawing.png", "drawing.png"),
        ("<script>.png", "_script_.png"),
        ("", "drawing.png"),
        (None, "drawing.png"),
        ("..", "drawing.png"),
    ],
)
def test_file_names_are_reduced_to_harmless_labels(given: str | None, shown: str) -> None:
    assert display_filename(given, sniff_kind(b"\x89PNG\r\n\x1a\n")) == shown

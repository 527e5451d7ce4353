"""The subject field loses control and format characters on input (NUL, ESC, bidi)."""

from __future__ import annotations

import sqlite3

import pytest
from fastapi.testclient import TestClient

from app.settings import AppSettings
from app.uploads import clean_subject
from tests.app.helpers import drawing_bytes


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("house\x00", "house"),
        ("\x1b[31mred\x1b[0m house", "[31mred[0m house"),
        ("tree\u202egnp.exe", "treegnp.exe"),  # right-to-left override
        ("\u2066cat\u2069 \u200fdog\u200e", "cat dog"),  # isolates and marks
        ("\ufeffsun\u200b", "sun"),  # BOM, zero-width space
        ("a\tb\r\nc\x85d", "a b c d"),  # whitespace controls become one space
        ("\x00\x1b\u202e", None),
        ("maison à pignon", "maison à pignon"),
        ("家", "家"),
    ],
)
def test_control_and_format_characters_are_stripped(given: str, kept: str | None) -> None:
    assert clean_subject(given) == kept


def test_an_upload_stores_and_returns_the_cleaned_subject(
    client: TestClient, app_settings: AppSettings
) -> None:
    response = client.post(
        "/api/v1/drawings",
        files={"file": ("d.png", drawing_bytes(), "image/png")},
        data={"age": "7", "subject": "\u202ehouse\x00 \x1bwith\u2067 dog"},
    )

    assert response.status_code == 201, response.text
    assert response.json()["subject"] == "house with dog"
    with sqlite3.connect(app_settings.database_path) as conn:
        assert conn.execute("SELECT subject FROM drawings").fetchone()[0] == "house with dog"

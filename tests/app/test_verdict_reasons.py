"""Each verdict is explained: the features contributing most, in plain words, stored with the
analysis and shown by the API and the dashboard."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.app.helpers import image_bytes

INK_WORDS = ("much less ink than drawings at this age", "almost nothing is drawn on the page")


def test_a_blank_page_is_flagged_for_having_almost_no_ink(admin_client: TestClient) -> None:
    files = {"file": ("blank.png", image_bytes(400, 400, colour="white"), "image/png")}
    response = admin_client.post("/api/v1/drawings", files=files, data={"age": "8"})
    assert response.status_code == 201, response.text
    analysis = response.json()

    assert analysis["is_anomaly"] is True
    assert 1 <= len(analysis["reasons"]) <= 3
    texts = [reason["text"] for reason in analysis["reasons"]]
    assert any(text in INK_WORDS for text in texts), texts
    first = analysis["reasons"][0]
    assert first["direction"] in ("higher", "lower") and 0 < first["share"] <= 1
    stored = admin_client.get(f"/api/v1/analyses/{analysis['id']}").json()
    assert stored["reasons"] == analysis["reasons"]

    page = admin_client.get("/dashboard").text
    assert any(text in page for text in INK_WORDS)

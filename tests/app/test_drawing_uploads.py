"""POST /api/v1/drawings and GET /api/v1/analyses/{public_id}: the happy path, the clean-up,
and what the public may read."""

from __future__ import annotations

import re
import sqlite3

import pytest
from fastapi.testclient import TestClient

from app import analysis
from app.settings import AppSettings
from opsd.aws import AwsClients
from tests.app.helpers import bucket_keys, drawing_bytes


def row_counts(settings: AppSettings) -> tuple[int, int]:
    with sqlite3.connect(settings.database_path) as conn:
        drawings = conn.execute("SELECT count(*) FROM drawings").fetchone()[0]
        analyses = conn.execute("SELECT count(*) FROM analyses").fetchone()[0]
    return drawings, analyses


def upload(client: TestClient, data: bytes, age: object = 7, name: str = "house.png", **extra):
    return client.post(
        "/api/v1/drawings",
        files={"file": (name, data, "image/png")},
        data={"age": str(age), **extra},
    )


def test_upload_stores_the_drawing_scores_it_and_records_both(
    client: TestClient, aws: AwsClients, app_settings: AppSettings
) -> None:
    data = drawing_bytes(age=7)
    response = upload(client, data, age=7, name="../../etc/passwd.png", subject="house")

    assert response.status_code == 201, response.text
    result = response.json()
    assert result["age_group"] == "5-7"
    assert result["age_years"] == 7
    assert result["subject"] == "house"
    assert result["is_anomaly"] == (result["anomaly_score"] > result["threshold"])
    assert 0.0 <= result["normalised_score"] <= 100.0
    assert result["processing_time_ms"] > 0
    with sqlite3.connect(app_settings.database_path) as conn:
        filename, key, size, stored_age = conn.execute(
            "SELECT filename, storage_key, size_bytes, age_years FROM drawings"
        ).fetchone()
    assert "/" not in filename and ".." not in filename.split(".")[0]
    assert key.startswith("drawings/") and key.endswith(".png") and "passwd" not in key
    assert size == len(data) and stored_age == 7
    stored = aws("s3").get_object(Bucket=app_settings.s3_bucket_drawings, Key=key)
    assert stored["Body"].read() == data
    assert stored["ContentType"] == "image/png"


def test_a_stored_analysis_can_be_read_back_by_its_handle_and_a_missing_one_is_404(
    client: TestClient,
) -> None:
    created = upload(client, drawing_bytes(age=12, fmt="JPEG"), age=12).json()

    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", created["public_id"])
    assert "id" not in created and "drawing_id" not in created
    assert client.get(f"/api/v1/analyses/{created['public_id']}").json() == created
    missing = client.get(f"/api/v1/analyses/{'A' * 22}")
    assert missing.status_code == 404
    assert missing.json() == {"detail": "analysis not found"}


def test_analyses_cannot_be_read_by_counting(client: TestClient) -> None:
    for age in (5, 9):
        assert upload(client, drawing_bytes(age=age), age=age, subject="house").status_code == 201

    for number in ("1", "2", "3", "0", "-1", "01"):
        answer = client.get(f"/api/v1/analyses/{number}")
        assert answer.status_code == 404, (number, answer.text)
        assert answer.json() == {"detail": "analysis not found"}
    assert client.get("/api/v1/admin/analyses/1").status_code == 401


def test_an_admin_reads_an_analysis_by_its_internal_id(admin_client: TestClient) -> None:
    created = upload(admin_client, drawing_bytes(age=6), age=6).json()

    by_id = admin_client.get("/api/v1/admin/analyses/1")

    assert by_id.status_code == 200
    assert by_id.json() == {**created, "id": 1, "drawing_id": 1}
    assert admin_client.get("/api/v1/admin/analyses/2").status_code == 404


def test_the_handle_is_given_only_to_the_uploader_and_in_the_api_docs(
    client: TestClient, admin_client: TestClient
) -> None:
    created = upload(client, drawing_bytes(age=8), age=8).json()
    schema = client.get("/openapi.json").json()
    public = schema["components"]["schemas"]["Analysis"]["properties"]

    assert "public_id" in public and "id" not in public
    assert "/api/v1/analyses/{public_id}" in schema["paths"]
    assert "/api/v1/analyses/{analysis_id}" not in schema["paths"]
    # The dashboard lists analyses by internal id, with no handle.
    assert created["public_id"] not in admin_client.get("/dashboard").text


def test_a_gross_anomaly_scores_above_a_typical_drawing(client: TestClient) -> None:
    typical = upload(client, drawing_bytes(age=9, seed=3), age=9).json()
    blank = upload(client, drawing_bytes(age=9, seed=3, anomalous=True), age=9).json()

    assert blank["anomaly_score"] > typical["anomaly_score"]
    assert blank["is_anomaly"]


@pytest.mark.parametrize("failing", ["score", "record"])
def test_a_failure_after_storing_removes_the_object_and_writes_no_row(
    make_client,
    aws: AwsClients,
    app_settings: AppSettings,
    monkeypatch: pytest.MonkeyPatch,
    failing: str,
) -> None:
    client = make_client(app_settings, raise_server_exceptions=False)

    def explode(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError(f"{failing} failed")

    target = "extract_features" if failing == "score" else "record_analysis"
    monkeypatch.setattr(analysis, target, explode)
    response = upload(client, drawing_bytes())

    assert response.status_code == 500
    assert response.json() == {"detail": "internal error; the request was not saved"}
    assert bucket_keys(aws, app_settings.s3_bucket_drawings) == []
    assert row_counts(app_settings) == (0, 0)


def test_a_database_failure_mid_transaction_leaves_no_drawing_row(
    make_client, aws: AwsClients, app_settings: AppSettings
) -> None:
    client = make_client(app_settings, raise_server_exceptions=False)
    with sqlite3.connect(app_settings.database_path) as conn:
        conn.execute(
            "CREATE TRIGGER refuse_analyses BEFORE INSERT ON analyses "
            "BEGIN SELECT RAISE(ABORT, 'analysis refused'); END"
        )

    response = upload(client, drawing_bytes())

    assert response.status_code == 500
    assert row_counts(app_settings) == (0, 0)
    assert bucket_keys(aws, app_settings.s3_bucket_drawings) == []


def test_an_unavailable_bucket_is_a_503_that_logs_the_reason_but_tells_the_public_no_key(
    client: TestClient,
    aws: AwsClients,
    app_settings: AppSettings,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bucket = app_settings.s3_bucket_drawings
    s3 = aws("s3")
    for version in s3.list_object_versions(Bucket=bucket).get("Versions", []):
        s3.delete_object(Bucket=bucket, Key=version["Key"], VersionId=version["VersionId"])
    s3.delete_bucket(Bucket=bucket)

    response = upload(client, drawing_bytes())

    assert response.status_code == 503
    assert int(response.headers["retry-after"]) > 0
    detail = response.json()["detail"]
    assert detail == (
        "the drawing could not be stored right now; nothing was saved, try again later"
    )
    assert row_counts(app_settings) == (0, 0)
    logged = capsys.readouterr().out
    assert "store drawing drawings/" in logged and "NoSuchBucket" in logged


def test_the_threshold_percentile_of_the_configuration_is_used(
    admin_client: TestClient,
) -> None:
    data = drawing_bytes(age=15, seed=8)
    before = upload(admin_client, data, age=15).json()
    changed = admin_client.put("/api/v1/config", json={"threshold_percentile": 60})
    assert changed.status_code == 200, changed.text
    after = upload(admin_client, data, age=15).json()

    assert after["anomaly_score"] == pytest.approx(before["anomaly_score"])
    assert after["threshold"] < before["threshold"]

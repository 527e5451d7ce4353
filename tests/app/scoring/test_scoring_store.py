"""Model artefacts in a versioned S3 bucket, and the fall back to the packaged model."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from structlog.testing import capture_logs

from app.scoring.artefact import ArtefactError, bundle_from_bytes
from app.scoring.model import ModelBundle
from app.scoring.store import (
    MODEL_KEY,
    load_latest,
    load_latest_bundle,
    load_packaged_bundle,
    upload_bundle,
)

BUCKET = "drawing-models-test"


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        yield client


@pytest.fixture(scope="module")
def packaged() -> ModelBundle:
    return load_packaged_bundle()


def test_upload_makes_a_new_version_with_the_model_version_in_metadata(
    s3: Any, packaged: ModelBundle
) -> None:
    first = upload_bundle(s3, BUCKET, replace(packaged, model_version="first-00000001"))
    second = upload_bundle(s3, BUCKET, replace(packaged, model_version="second-00000002"))
    assert first and second and first != second
    versions = s3.list_object_versions(Bucket=BUCKET, Prefix=MODEL_KEY)["Versions"]
    assert len(versions) == 2
    head = s3.head_object(Bucket=BUCKET, Key=MODEL_KEY)
    assert head["Metadata"] == {"model_version": "second-00000002"}
    assert head["ServerSideEncryption"] == "AES256"


def test_the_newest_version_wins(s3: Any, packaged: ModelBundle) -> None:
    upload_bundle(s3, BUCKET, replace(packaged, model_version="old-00000001"))
    newest_id = upload_bundle(s3, BUCKET, replace(packaged, model_version="new-00000002"))
    with capture_logs() as logs:
        loaded = load_latest(s3, BUCKET)
    assert loaded.source == "s3"
    assert loaded.s3_version_id == newest_id
    assert loaded.bundle.model_version == "new-00000002"
    assert logs[-1]["event"] == "model loaded" and logs[-1]["source"] == "s3"
    assert logs[-1]["model_version"] == "new-00000002"


def test_a_corrupted_newest_version_falls_back_to_the_packaged_model(
    s3: Any, packaged: ModelBundle
) -> None:
    upload_bundle(s3, BUCKET, replace(packaged, model_version="good-00000001"))
    s3.put_object(Bucket=BUCKET, Key=MODEL_KEY, Body=b"PK\x03\x04 truncated garbage")
    with capture_logs() as logs:
        loaded = load_latest(s3, BUCKET)
    assert loaded.source == "packaged"
    assert loaded.bundle.model_version == packaged.model_version
    events = [(entry["event"], entry.get("source")) for entry in logs]
    assert events == [("model unusable", None), ("model loaded", "packaged")]
    assert "not a readable npz archive" in logs[0]["error"]


@pytest.mark.parametrize(
    ("bucket", "key", "code"),
    [("no-such-bucket", MODEL_KEY, "NoSuchBucket"), (BUCKET, "models/other.npz", "NoSuchKey")],
)
def test_a_missing_bucket_or_key_falls_back_to_the_packaged_model(
    s3: Any, packaged: ModelBundle, bucket: str, key: str, code: str
) -> None:
    with capture_logs() as logs:
        bundle = load_latest_bundle(s3, bucket, key)
    assert bundle.model_version == packaged.model_version
    assert logs[0] == {
        "event": "model unavailable",
        "log_level": "warning",
        "bucket": bucket,
        "key": key,
        "error": code,
    }


def test_no_client_or_bucket_means_the_packaged_model(packaged: ModelBundle) -> None:
    assert load_latest(None, None).source == "packaged"
    assert load_latest_bundle(None, "").model_version == packaged.model_version


def test_a_broken_packaged_model_is_a_clear_error(s3: Any, tmp_path: Path) -> None:
    broken = tmp_path / "model.npz"
    broken.write_bytes(b"nope")
    with pytest.raises(ArtefactError, match="not a readable npz archive"):
        load_latest(s3, "no-such-bucket", packaged=broken)
    with pytest.raises(ArtefactError, match="packaged model .*missing.npz"):
        load_packaged_bundle(tmp_path / "missing.npz")


def test_upload_failure_says_what_was_being_done(packaged: ModelBundle, s3: Any) -> None:
    with pytest.raises(RuntimeError, match=r"upload model s3://absent/models/.*: NoSuchBucket"):
        upload_bundle(s3, "absent", packaged)


def test_uploaded_bytes_are_the_artefact(s3: Any, packaged: ModelBundle) -> None:
    upload_bundle(s3, BUCKET, packaged, key="models/custom.npz")
    body = s3.get_object(Bucket=BUCKET, Key="models/custom.npz")["Body"].read()
    assert bundle_from_bytes(body).model_version == packaged.model_version

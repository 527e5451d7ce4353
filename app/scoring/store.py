"""Model artefacts in the models bucket (versioning on), and the packaged fallback.

Each upload of a bundle is a new version of one key; the app loads the newest version at
start and falls back to the model packaged with the app when the bucket or key is missing,
unreadable or holds an artefact that cannot be used. The S3 client is passed in (made by the
project's client factory), never created here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from botocore.exceptions import BotoCoreError, ClientError

from app.scoring.artefact import ArtefactError, bundle_from_bytes, bundle_to_bytes
from app.scoring.model import ModelBundle

log = structlog.get_logger()

MODEL_KEY = "models/anomaly-model.npz"
PACKAGED_MODEL_PATH = Path(__file__).parent / "packaged" / "model.npz"
CONTENT_TYPE = "application/octet-stream"


@dataclass(frozen=True)
class LoadedBundle:
    """A bundle and where it came from (``s3`` or ``packaged``)."""

    bundle: ModelBundle
    source: str
    s3_version_id: str | None = None


def _error_code(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "ClientError"))
    return type(exc).__name__


def upload_bundle(
    s3_client: Any, bucket: str, bundle: ModelBundle, key: str = MODEL_KEY
) -> str | None:
    """Upload ``bundle`` as a new version of ``key``; returns the S3 version id (None when
    the bucket has no versioning)."""
    body = bundle_to_bytes(bundle)
    try:
        response = s3_client.put_object(
            Bucket=bucket,
            Key=key,
            Body=body,
            ContentType=CONTENT_TYPE,
            Metadata={"model_version": bundle.model_version},
            ServerSideEncryption="AES256",
            ChecksumAlgorithm="SHA256",
        )
    except (ClientError, BotoCoreError) as exc:
        raise RuntimeError(f"upload model s3://{bucket}/{key}: {_error_code(exc)}") from exc
    version_id = response.get("VersionId")
    log.info(
        "model uploaded",
        bucket=bucket,
        key=key,
        bytes=len(body),
        model_version=bundle.model_version,
        s3_version_id=version_id,
    )
    return version_id


def load_packaged_bundle(path: Path = PACKAGED_MODEL_PATH) -> ModelBundle:
    """The model packaged with the app; ArtefactError if it is missing or unusable."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ArtefactError(f"packaged model {path}: {exc.strerror or exc}") from None
    return bundle_from_bytes(data)


def load_latest(
    s3_client: Any | None,
    bucket: str | None,
    key: str = MODEL_KEY,
    packaged: Path = PACKAGED_MODEL_PATH,
) -> LoadedBundle:
    """The newest version of ``key`` in ``bucket``, or the packaged model when that cannot be
    had (no client or bucket given, bucket or key missing, access denied, corrupted)."""
    if s3_client is not None and bucket:
        try:
            response = s3_client.get_object(Bucket=bucket, Key=key)
            data = response["Body"].read()
            bundle = bundle_from_bytes(data)
        except (ClientError, BotoCoreError) as exc:
            log.warning("model unavailable", bucket=bucket, key=key, error=_error_code(exc))
        except ArtefactError as exc:
            log.warning("model unusable", bucket=bucket, key=key, error=str(exc))
        else:
            version_id = response.get("VersionId")
            log.info(
                "model loaded",
                source="s3",
                bucket=bucket,
                key=key,
                bytes=len(data),
                model_version=bundle.model_version,
                s3_version_id=version_id,
            )
            return LoadedBundle(bundle, "s3", version_id)
    bundle = load_packaged_bundle(packaged)
    log.info(
        "model loaded", source="packaged", path=str(packaged), model_version=bundle.model_version
    )
    return LoadedBundle(bundle, "packaged")


def load_latest_bundle(
    s3_client: Any | None,
    bucket: str | None,
    key: str = MODEL_KEY,
    packaged: Path = PACKAGED_MODEL_PATH,
) -> ModelBundle:
    """Like ``load_latest``, only the bundle."""
    return load_latest(s3_client, bucket, key, packaged).bundle

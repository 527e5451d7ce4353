"""One upload, end to end: check → store in the drawings bucket → score → record.

The object key is generated (never the file name). If scoring or recording fails, the
stored object version is deleted again and nothing is written to the database.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from botocore.exceptions import BotoCoreError, ClientError
from sqlalchemy import Engine

from app.records import NewAnalysis, NewDrawing, analysis_by_id, record_analysis
from app.runtime_config import read_tunables
from app.scoring import LoadedBundle, extract_features
from app.settings import AppSettings
from app.uploads import CheckedDrawing, decode_drawing, display_filename
from opsd.aws import AwsClients, describe_aws_error

log = structlog.get_logger()


class StorageError(Exception):
    """The drawings bucket refused the upload; the message says what and why."""


@dataclass(frozen=True)
class UploadRequest:
    data: bytes
    filename: str | None
    age: int
    subject: str | None


def new_storage_key(extension: str, now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    return f"drawings/{now:%Y/%m/%d}/{uuid.uuid4().hex}.{extension}"


class Analyser:
    """Scores uploads with the loaded model; at most `analysis_concurrency` decode at once,
    which bounds the memory decoded images take."""

    def __init__(
        self, settings: AppSettings, engine: Engine, clients: AwsClients, model: LoadedBundle
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.clients = clients
        self.model = model
        self._slots = threading.BoundedSemaphore(settings.analysis_concurrency)

    def analyse(self, upload: UploadRequest) -> dict[str, Any]:
        """Blocking: run it in a worker thread."""
        with self._slots:
            started = time.perf_counter()
            checked = decode_drawing(
                upload.data,
                self.settings.max_upload_bytes,
                self.settings.min_image_side,
                self.settings.max_image_pixels,
            )
            key, version_id = self._store(checked)
            try:
                analysis_id = self._score_and_record(checked, upload, key, started)
            except BaseException:
                self._remove(key, version_id)
                raise
        record = analysis_by_id(self.engine, analysis_id)
        if record is None:  # pragma: no cover - written just above
            raise RuntimeError(f"analysis {analysis_id} vanished after being written")
        return record

    def _score_and_record(
        self, checked: CheckedDrawing, upload: UploadRequest, key: str, started: float
    ) -> int:
        percentile = read_tunables(self.engine, self.settings).threshold_percentile
        features = extract_features(checked.image)
        score = self.model.bundle.score(features, upload.age, percentile=percentile)
        elapsed_ms = (time.perf_counter() - started) * 1000.0
        drawing = NewDrawing(
            filename=display_filename(upload.filename, checked.kind),
            content_type=checked.kind.content_type,
            size_bytes=len(checked.data),
            sha256=checked.sha256,
            age_years=upload.age,
            subject=upload.subject,
            storage_key=key,
        )
        analysis = NewAnalysis(
            model_version=score.model_version,
            age_group=score.age_group,
            anomaly_score=score.anomaly_score,
            threshold=score.threshold,
            is_anomaly=score.is_anomaly,
            normalised_score=score.normalised_score,
            processing_time_ms=round(elapsed_ms, 3),
            reasons=[asdict(reason) for reason in score.reasons],
        )
        analysis_id = record_analysis(self.engine, drawing, analysis)
        log.info(
            "drawing analysed",
            analysis_id=analysis_id,
            age_group=score.age_group,
            is_anomaly=score.is_anomaly,
            processing_time_ms=analysis.processing_time_ms,
            bytes=len(checked.data),
        )
        return analysis_id

    def _store(self, checked: CheckedDrawing) -> tuple[str, str | None]:
        bucket = self.settings.s3_bucket_drawings
        key = new_storage_key(checked.kind.extension)
        try:
            response = self.clients("s3").put_object(
                Bucket=bucket,
                Key=key,
                Body=checked.data,
                ContentType=checked.kind.content_type,
                ServerSideEncryption="AES256",
                Metadata={"sha256": checked.sha256},
            )
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(describe_aws_error(f"store drawing {key}", exc)) from None
        return key, response.get("VersionId")

    def _remove(self, key: str, version_id: str | None) -> None:
        """Take back a stored drawing: its version itself, so no delete marker is left."""
        bucket = self.settings.s3_bucket_drawings
        extra = {"VersionId": version_id} if version_id else {}
        try:
            self.clients("s3").delete_object(Bucket=bucket, Key=key, **extra)
        except (ClientError, BotoCoreError) as exc:
            log.error(
                "orphan drawing left in bucket",
                bucket=bucket,
                key=key,
                error=describe_aws_error(f"delete drawing {key}", exc),
            )
        else:
            log.info("stored drawing removed after failure", bucket=bucket, key=key)

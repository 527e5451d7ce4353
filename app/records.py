"""Reading and writing drawings and analyses in the app database."""

from __future__ import annotations

import re
import secrets
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from sqlalchemy import Engine, Integer, cast, func, select

from app.database import utc_now
from app.scoring import GROUP_NAMES
from app.tables import analyses, drawings


@dataclass(frozen=True)
class NewDrawing:
    filename: str
    content_type: str
    size_bytes: int
    sha256: str
    age_years: int
    subject: str | None
    storage_key: str


@dataclass(frozen=True)
class NewAnalysis:
    model_version: str
    age_group: str
    anomaly_score: float
    threshold: float
    is_anomaly: bool
    normalised_score: float
    processing_time_ms: float


PUBLIC_ID_BYTES = 16  # 128 random bits, as the migration that gave existing rows theirs
PUBLIC_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{22}")


def new_public_id() -> str:
    return secrets.token_urlsafe(PUBLIC_ID_BYTES)


def record_analysis(engine: Engine, drawing: NewDrawing, analysis: NewAnalysis) -> int:
    """Write the drawing and its analysis (with a new public id) in one transaction; the
    analysis id."""
    now = utc_now()
    with engine.begin() as conn:
        drawing_id = conn.execute(
            drawings.insert().values(**asdict(drawing), created_at=now)
        ).inserted_primary_key[0]
        return int(
            conn.execute(
                analyses.insert().values(
                    **asdict(analysis),
                    drawing_id=drawing_id,
                    created_at=now,
                    public_id=new_public_id(),
                )
            ).inserted_primary_key[0]
        )


_COLUMNS = (
    analyses.c.id,
    analyses.c.public_id,
    analyses.c.drawing_id,
    analyses.c.created_at,
    analyses.c.model_version,
    analyses.c.age_group,
    analyses.c.anomaly_score,
    analyses.c.threshold,
    analyses.c.is_anomaly,
    analyses.c.normalised_score,
    analyses.c.processing_time_ms,
    drawings.c.age_years,
    drawings.c.subject,
)


def analysis_by_id(engine: Engine, analysis_id: int) -> dict[str, Any] | None:
    """By the internal id (admin only)."""
    return _one(engine, analyses.c.id == analysis_id)


def analysis_by_public_id(engine: Engine, public_id: str) -> dict[str, Any] | None:
    """By the handle the uploader was given; anything that cannot be one finds nothing."""
    if not PUBLIC_ID_PATTERN.fullmatch(public_id):
        return None
    return _one(engine, analyses.c.public_id == public_id)


def _one(engine: Engine, condition: Any) -> dict[str, Any] | None:
    query = (
        select(*_COLUMNS).join(drawings, drawings.c.id == analyses.c.drawing_id).where(condition)
    )
    with engine.connect() as conn:
        row = conn.execute(query).mappings().first()
    return _public(row) if row else None


def recent_analyses(engine: Engine, limit: int) -> list[dict[str, Any]]:
    query = (
        select(*_COLUMNS, drawings.c.filename)
        .join(drawings, drawings.c.id == analyses.c.drawing_id)
        .order_by(analyses.c.id.desc())
        .limit(limit)
    )
    with engine.connect() as conn:
        return [_public(row) for row in conn.execute(query).mappings()]


def _public(row: Any) -> dict[str, Any]:
    record = dict(row)
    record["is_anomaly"] = bool(record["is_anomaly"])
    return record


@dataclass(frozen=True)
class AnalysisStats:
    total: int
    anomalies: int
    last_24h: int
    by_age_group: dict[str, int]
    processing_ms_p50: float | None
    processing_ms_p95: float | None
    processing_ms_p99: float | None
    percentile_sample: int

    @property
    def anomaly_rate(self) -> float | None:
        return self.anomalies / self.total if self.total else None


def analysis_stats(engine: Engine, since_24h: str, sample: int = 5000) -> AnalysisStats:
    """Counts over every analysis; processing-time percentiles over the newest `sample`."""
    with engine.connect() as conn:
        total, anomalies = conn.execute(
            select(func.count(), func.coalesce(func.sum(cast(analyses.c.is_anomaly, Integer)), 0))
        ).one()
        last_24h = conn.execute(
            select(func.count()).where(analyses.c.created_at >= since_24h)
        ).scalar_one()
        groups = dict(
            conn.execute(
                select(analyses.c.age_group, func.count()).group_by(analyses.c.age_group)
            ).all()
        )
        times = conn.execute(
            select(analyses.c.processing_time_ms).order_by(analyses.c.id.desc()).limit(sample)
        ).scalars()
        values = np.fromiter(times, dtype=np.float64)
    p50 = p95 = p99 = None
    if values.size:
        p50, p95, p99 = (float(v) for v in np.percentile(values, [50, 95, 99]))
    return AnalysisStats(
        total=int(total),
        anomalies=int(anomalies),
        last_24h=int(last_24h),
        by_age_group={g: int(groups[g]) for g in GROUP_NAMES if g in groups},
        processing_ms_p50=p50,
        processing_ms_p95=p95,
        processing_ms_p99=p99,
        percentile_sample=int(values.size),
    )

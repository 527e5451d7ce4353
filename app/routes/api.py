"""The JSON API: health, uploads and analyses (public), runtime configuration (admin)."""

from __future__ import annotations

from typing import Annotated

import structlog
from fastapi import APIRouter, Depends, File, Form, HTTPException, Path, UploadFile
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from app.admin_access import admin_api, admin_api_write
from app.analysis import StorageError, UploadRequest
from app.database import database_reachable
from app.records import analysis_by_id, analysis_by_public_id
from app.runtime_config import Tunables, TunablesUpdate, read_tunables, update_tunables
from app.services import AnalysisBusy, ServicesDep
from app.sessions import AdminSession
from app.uploads import UploadRefused, check_age, check_size, clean_subject

log = structlog.get_logger()
router = APIRouter()  # what the app includes: the three below
health_router = APIRouter(tags=["public"])  # outside the versioned API: the load balancer's
public = APIRouter(prefix="/api/v1", tags=["public"])
admin = APIRouter(prefix="/api/v1", tags=["admin"])
# SQLite's INTEGER range: a larger id cannot exist and must not reach the driver (500).
MAX_ROW_ID = 2**63 - 1
STORAGE_RETRY_AFTER_S = 30
BUSY_RETRY_AFTER_S = 5


class Reason(BaseModel):
    feature: str
    direction: str
    share: float
    text: str


class Analysis(BaseModel):
    """An analysis as its uploader sees it: `public_id` is the only way to read it back."""

    public_id: str = Field(
        description="unguessable handle (128 random bits), given only to the uploader: "
        "GET /api/v1/analyses/{public_id}"
    )
    created_at: str
    age_years: int
    subject: str | None
    age_group: str
    model_version: str
    anomaly_score: float
    threshold: float
    is_anomaly: bool
    normalised_score: float
    processing_time_ms: float
    reasons: list[Reason] = []  # what contributed most to the score, in plain words


class AdminAnalysis(Analysis):
    """With the internal ids, for admins."""

    id: int
    drawing_id: int


class Problem(BaseModel):
    detail: str


REFUSALS: dict[int | str, dict[str, object]] = {
    code: {"model": Problem, "description": text}
    for code, text in {
        413: "file or image too large",
        415: "not a PNG, JPEG or BMP image",
        408: "the request body did not arrive in time",
        422: "bad age, image too small or undecodable",
        503: "busy (too many uploads) or storage unavailable; see Retry-After",
    }.items()
}


@health_router.get("/health")
def health(app_services: ServicesDep) -> JSONResponse:
    """What the load balancer checks: the database answers and a model is loaded."""
    problem = database_reachable(app_services.engine)
    if problem is not None:
        log.error("health check failed", database=problem)
    model = app_services.model
    body = {
        "status": "ok" if problem is None else "unavailable",
        "database": "ok" if problem is None else "unavailable",
        "model_version": model.bundle.model_version,
        "model_source": model.source,
    }
    return JSONResponse(body, status_code=200 if problem is None else 503)


async def read_upload(file: UploadFile, max_bytes: int) -> bytes:
    """At most `max_bytes` + 1, in one read (one buffer): enough to know it is too large."""
    data = await file.read(max_bytes + 1)
    check_size(len(data), max_bytes)
    return data


@public.post("/drawings", status_code=201, response_model=Analysis, responses=REFUSALS)
async def upload_drawing(
    app_services: ServicesDep,
    file: Annotated[UploadFile, File(description="PNG, JPEG or BMP, at most 10 MB")],
    age: Annotated[int, Form(description="age of the child in years, 2 to 18")],
    subject: Annotated[str | None, Form(description="what was drawn (optional)")] = None,
) -> Analysis:
    """Store a drawing, score it against the model of the child's age group, record both.

    The answer's `public_id` is the only handle to the analysis: keep it. When the app is
    busy the answer is 503 with Retry-After (nothing stored)."""
    try:
        checked_age, checked_subject = check_age(age), clean_subject(subject)
        # The body waits on disk (spooled) until a slot lets it into memory.
        async with app_services.analysis_slots.slot():
            upload = UploadRequest(
                data=await read_upload(file, app_services.settings.max_upload_bytes),
                filename=file.filename,
                age=checked_age,
                subject=checked_subject,
            )
            record = await run_in_threadpool(app_services.analyser.analyse, upload)
    except UploadRefused as exc:
        raise HTTPException(exc.status_code, exc.detail) from None
    except AnalysisBusy:
        raise HTTPException(
            503,
            "too many uploads in progress; try again shortly",
            headers={"Retry-After": str(BUSY_RETRY_AFTER_S)},
        ) from None
    except StorageError as exc:
        # The reason names the endpoint, bucket and key: the log has it, the public does not.
        log.error("drawing not stored", error=str(exc))
        raise HTTPException(
            503,
            "the drawing could not be stored right now; nothing was saved, try again later",
            headers={"Retry-After": str(STORAGE_RETRY_AFTER_S)},
        ) from None
    return Analysis.model_validate(record)


@public.get("/analyses/{public_id}", response_model=Analysis, responses={404: {"model": Problem}})
def get_analysis(
    public_id: Annotated[str, Path(max_length=64, description="the handle the upload returned")],
    app_services: ServicesDep,
) -> Analysis:
    """An analysis by its unguessable handle (sequential ids are not accepted here)."""
    record = analysis_by_public_id(app_services.engine, public_id)
    if record is None:
        raise HTTPException(404, "analysis not found")
    return Analysis.model_validate(record)


@admin.get(
    "/admin/analyses/{analysis_id}",
    response_model=AdminAnalysis,
    responses={404: {"model": Problem}},
)
def get_analysis_by_id(
    analysis_id: Annotated[int, Path(ge=1, le=MAX_ROW_ID)],
    app_services: ServicesDep,
    _session: Annotated[AdminSession, Depends(admin_api)],
) -> AdminAnalysis:
    """An analysis by its internal sequential id (admin only)."""
    record = analysis_by_id(app_services.engine, analysis_id)
    if record is None:
        raise HTTPException(404, f"analysis {analysis_id} not found")
    return AdminAnalysis.model_validate(record)


@admin.delete("/sessions", status_code=204)
def log_out_everywhere(
    app_services: ServicesDep, _session: Annotated[AdminSession, Depends(admin_api_write)]
) -> Response:
    """End every admin session, this one included (needs the X-CSRF-Token header)."""
    ended = app_services.sessions.end_all()
    log.info("admin logged out everywhere", sessions=ended)
    return Response(status_code=204)


@admin.get("/config", response_model=Tunables)
def get_config(
    app_services: ServicesDep, _session: Annotated[AdminSession, Depends(admin_api)]
) -> Tunables:
    return read_tunables(app_services.engine, app_services.settings)


@admin.put("/config", response_model=Tunables)
def put_config(
    change: TunablesUpdate,
    app_services: ServicesDep,
    _session: Annotated[AdminSession, Depends(admin_api_write)],
) -> Tunables:
    """Change some tunables (only the fields given); needs the X-CSRF-Token header."""
    return update_tunables(app_services.engine, app_services.settings, change)


for _part in (health_router, public, admin):
    router.include_router(_part)

"""The JSON API: health, uploads and analyses (public), runtime configuration (admin)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, HTTPException, Path, UploadFile
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from app.admin_access import admin_api, admin_api_write
from app.analysis import StorageError, UploadRequest
from app.database import database_reachable
from app.records import analysis_by_id
from app.runtime_config import Tunables, TunablesUpdate, read_tunables, update_tunables
from app.services import AppServices, services
from app.sessions import AdminSession
from app.uploads import UploadRefused, check_age, check_size, clean_subject

router = APIRouter()
ServicesDep = Annotated[AppServices, Depends(services)]
READ_CHUNK = 1024 * 1024
# SQLite's INTEGER range: a larger id cannot exist and must not reach the driver (500).
MAX_ROW_ID = 2**63 - 1


class Reason(BaseModel):
    feature: str
    direction: str
    share: float
    text: str


class Analysis(BaseModel):
    id: int
    drawing_id: int
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


class Problem(BaseModel):
    detail: str


REFUSALS: dict[int | str, dict[str, object]] = {
    code: {"model": Problem, "description": text}
    for code, text in {
        413: "file or image too large",
        415: "not a PNG, JPEG or BMP image",
        422: "bad age, image too small or undecodable",
        503: "the drawings bucket is unavailable",
    }.items()
}


@router.get("/health", tags=["public"])
def health(app_services: ServicesDep) -> JSONResponse:
    """What the load balancer checks: the database answers and a model is loaded."""
    problem = database_reachable(app_services.engine)
    model = app_services.model
    body = {
        "status": "ok" if problem is None else "unavailable",
        "database": "ok" if problem is None else problem,
        "model_version": model.bundle.model_version,
        "model_source": model.source,
    }
    return JSONResponse(body, status_code=200 if problem is None else 503)


async def read_upload(file: UploadFile, max_bytes: int) -> bytes:
    """At most `max_bytes` + 1 are read: enough to know the file is too large."""
    chunks: list[bytes] = []
    size = 0
    while size <= max_bytes:
        chunk = await file.read(min(READ_CHUNK, max_bytes + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    check_size(size, max_bytes)
    return b"".join(chunks)


@router.post(
    "/api/v1/drawings",
    status_code=201,
    response_model=Analysis,
    responses=REFUSALS,
    tags=["public"],
)
async def upload_drawing(
    app_services: ServicesDep,
    file: Annotated[UploadFile, File(description="PNG, JPEG or BMP, at most 10 MB")],
    age: Annotated[int, Form(description="age of the child in years, 2 to 18")],
    subject: Annotated[str | None, Form(description="what was drawn (optional)")] = None,
) -> Analysis:
    """Store a drawing, score it against the model of the child's age group, record both."""
    try:
        checked_age, checked_subject = check_age(age), clean_subject(subject)
        upload = UploadRequest(
            data=await read_upload(file, app_services.settings.max_upload_bytes),
            filename=file.filename,
            age=checked_age,
            subject=checked_subject,
        )
        record = await run_in_threadpool(app_services.analyser.analyse, upload)
    except UploadRefused as exc:
        raise HTTPException(exc.status_code, exc.detail) from None
    except StorageError as exc:
        raise HTTPException(503, str(exc)) from None
    return Analysis.model_validate(record)


@router.get(
    "/api/v1/analyses/{analysis_id}",
    response_model=Analysis,
    responses={404: {"model": Problem}},
    tags=["public"],
)
def get_analysis(
    analysis_id: Annotated[int, Path(ge=1, le=MAX_ROW_ID)], app_services: ServicesDep
) -> Analysis:
    record = analysis_by_id(app_services.engine, analysis_id)
    if record is None:
        raise HTTPException(404, f"analysis {analysis_id} not found")
    return Analysis.model_validate(record)


@router.get("/api/v1/config", response_model=Tunables, tags=["admin"])
def get_config(
    app_services: ServicesDep, _session: Annotated[AdminSession, Depends(admin_api)]
) -> Tunables:
    return read_tunables(app_services.engine, app_services.settings)


@router.put("/api/v1/config", response_model=Tunables, tags=["admin"])
def put_config(
    change: TunablesUpdate,
    app_services: ServicesDep,
    _session: Annotated[AdminSession, Depends(admin_api_write)],
) -> Tunables:
    """Change some tunables (only the fields given); needs the X-CSRF-Token header."""
    return update_tunables(app_services.engine, app_services.settings, change)

"""Tunables an admin can change at runtime (GET/PUT /api/v1/config), kept in `app_config`.

Each value falls back to the setting of the same name until an admin changes it.
"""

from __future__ import annotations

import json

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Engine, select
from sqlalchemy.dialects import postgresql, sqlite

from app.database import utc_now
from app.settings import AppSettings
from app.tables import app_config


class Tunables(BaseModel):
    model_config = ConfigDict(extra="forbid")

    threshold_percentile: float = Field(
        ge=50.0, le=99.9, description="percentile of the reference scores used as threshold"
    )
    dashboard_recent_count: int = Field(
        ge=1, le=500, description="analyses listed on the dashboard"
    )


class TunablesUpdate(BaseModel):
    """A partial change: only the fields given are changed; unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")

    threshold_percentile: float | None = Field(None, ge=50.0, le=99.9)
    dashboard_recent_count: int | None = Field(None, ge=1, le=500)


def defaults(settings: AppSettings) -> dict[str, object]:
    return {name: getattr(settings, name) for name in Tunables.model_fields}


def read_tunables(engine: Engine, settings: AppSettings) -> Tunables:
    values = defaults(settings)
    with engine.connect() as conn:
        for key, raw in conn.execute(select(app_config.c.key, app_config.c.value)):
            if key in values:
                values[key] = json.loads(raw)
    return Tunables.model_validate(values)


def update_tunables(engine: Engine, settings: AppSettings, change: TunablesUpdate) -> Tunables:
    """Store the fields of `change` that are set; the tunables as they now are."""
    given = change.model_dump(exclude_unset=True, exclude_none=True)
    merged = Tunables.model_validate({**read_tunables(engine, settings).model_dump(), **given})
    now = utc_now()
    insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
    with engine.begin() as conn:
        for key in given:
            value = json.dumps(getattr(merged, key))
            statement = insert(app_config).values(key=key, value=value, updated_at=now)
            conn.execute(
                statement.on_conflict_do_update(
                    index_elements=[app_config.c.key],
                    set_={"value": value, "updated_at": now},
                )
            )
    return merged

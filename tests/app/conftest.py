"""Fixtures of the app tests: migrated database, the app on moto, drawings as bytes."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.scoring import MAX_AGE, MIN_AGE, ModelBundle, extract_features, upload_bundle
from app.scoring.synthetic import generate_drawing
from app.scoring.training import fit_bundle
from app.settings import AppSettings
from opsd.aws import AwsClients
from opsd.settings import load_settings
from tests.app.helpers import ADMIN_PASSWORD, login
from tests.conftest import migrated_template

_APP_VARIABLES = tuple(name.upper() for name in AppSettings.model_fields)


@pytest.fixture(autouse=True)
def _no_app_settings_from_the_developer(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _APP_VARIABLES:
        if name not in ("DATABASE_PATH", "OPS_STATE_PATH", "SCRATCH_DIR"):
            monkeypatch.delenv(name, raising=False)


@pytest.fixture
def app_settings() -> AppSettings:
    return load_settings(AppSettings, admin_password=ADMIN_PASSWORD)


@pytest.fixture(scope="session")
def test_model() -> ModelBundle:
    """A small model fitted on synthetic drawings, once per session (about 3 s)."""
    rng = np.random.default_rng(11)
    ages = np.repeat(np.arange(MIN_AGE, MAX_AGE + 1), 7)
    features = np.stack([extract_features(generate_drawing(int(a), rng, 128)) for a in ages])
    return fit_bundle(features, ages, version_prefix="test")


@pytest.fixture(scope="session")
def migrated_database() -> Path:
    """An empty database at the newest schema, migrated once and copied by each test."""
    return migrated_template()


@pytest.fixture
def make_client(
    aws: AwsClients, test_model: ModelBundle, migrated_database: Path
) -> Iterator[Callable[..., TestClient]]:
    """A started app (lifespan run) on a migrated database, with moto behind it and the test
    model as the newest version in the models bucket."""
    clients: list[TestClient] = []

    def make(settings: AppSettings, upload_model: bool = True, **kwargs: object) -> TestClient:
        if not settings.database_path.exists():
            settings.database_path.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(migrated_database, settings.database_path)
        if upload_model:
            upload_bundle(aws("s3"), settings.s3_bucket_models, test_model)
        client = TestClient(create_app(settings), **kwargs)  # type: ignore[arg-type]
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: Callable[..., TestClient], app_settings: AppSettings) -> TestClient:
    return make_client(app_settings)


@pytest.fixture
def admin_client(make_client: Callable[..., TestClient], app_settings: AppSettings) -> TestClient:
    admin = make_client(app_settings)
    admin.headers["X-CSRF-Token"] = login(admin)
    return admin

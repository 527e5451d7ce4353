"""What the routes share for the life of the app, opened once in the lifespan."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from fastapi import Request
from sqlalchemy import Engine

from app.admin_password import AdminPassword
from app.analysis import Analyser
from app.operations_panel import OperationsPanel
from app.scoring import LoadedBundle
from app.sessions import LoginThrottle, SessionSigner
from app.settings import AppSettings
from opsd.aws import AwsClients


@dataclass
class AppServices:
    settings: AppSettings
    clients: AwsClients
    engine: Engine
    model: LoadedBundle
    model_loaded_at: datetime
    analyser: Analyser
    admin_password: AdminPassword
    signer: SessionSigner
    throttle: LoginThrottle
    operations: OperationsPanel

    @classmethod
    def open(
        cls, settings: AppSettings, clients: AwsClients, engine: Engine, model: LoadedBundle
    ) -> AppServices:
        password = AdminPassword(settings, clients)
        return cls(
            settings=settings,
            clients=clients,
            engine=engine,
            model=model,
            model_loaded_at=datetime.now(UTC),
            analyser=Analyser(settings, engine, clients, model),
            admin_password=password,
            signer=SessionSigner(settings, password),
            throttle=LoginThrottle(settings.login_max_failures, settings.login_window_seconds),
            operations=OperationsPanel(settings, clients),
        )


def services(request: Request) -> AppServices:
    return request.app.state.services  # type: ignore[no-any-return]

"""What the routes share for the life of the app, opened once in the lifespan."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import Engine

from app.admin_password import AdminPassword
from app.analysis import Analyser
from app.aws_calls import AppAwsClients
from app.login_throttle import LoginGuard
from app.operations_panel import OperationsPanel
from app.scoring import LoadedBundle
from app.sessions import SessionStore
from app.settings import AppSettings


class AnalysisBusy(Exception):
    """No analysis slot came free in time; the client should retry later."""


class AnalysisSlots:
    """At most `analysis_concurrency` uploads read into memory and analysed at once; the
    others wait here (their bodies still on disk) for at most `upload_wait_seconds`."""

    def __init__(self, slots: int, wait_s: float) -> None:
        self._semaphore = asyncio.Semaphore(slots)
        self._wait_s = wait_s

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        try:
            await asyncio.wait_for(self._semaphore.acquire(), self._wait_s)
        except TimeoutError:
            raise AnalysisBusy from None
        try:
            yield
        finally:
            self._semaphore.release()


@dataclass
class AppServices:
    settings: AppSettings
    clients: AppAwsClients
    engine: Engine
    model: LoadedBundle
    model_loaded_at: datetime
    analyser: Analyser
    analysis_slots: AnalysisSlots
    admin_password: AdminPassword
    sessions: SessionStore
    login_guard: LoginGuard
    operations: OperationsPanel

    @classmethod
    def open(
        cls, settings: AppSettings, clients: AppAwsClients, engine: Engine, model: LoadedBundle
    ) -> AppServices:
        password = AdminPassword(settings, clients.login)
        return cls(
            settings=settings,
            clients=clients,
            engine=engine,
            model=model,
            model_loaded_at=datetime.now(UTC),
            analyser=Analyser(settings, engine, clients.upload, model),
            analysis_slots=AnalysisSlots(
                settings.analysis_concurrency, settings.upload_wait_seconds
            ),
            admin_password=password,
            sessions=SessionStore(settings, password, engine),
            login_guard=LoginGuard(
                settings.login_max_failures,
                settings.login_account_max_failures,
                settings.login_window_seconds,
            ),
            operations=OperationsPanel(settings, clients.dashboard),
        )


def services(request: Request) -> AppServices:
    return request.app.state.services  # type: ignore[no-any-return]


ServicesDep = Annotated[AppServices, Depends(services)]

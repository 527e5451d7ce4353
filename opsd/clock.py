"""The clock every run reads (`ctx.clock`): the real UTC time unless a test gives another."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)

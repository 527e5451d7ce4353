"""Alembic migrations of the app database (SQLite or PostgreSQL: only dialect-neutral ops)."""

from __future__ import annotations

from alembic import op


def set_sqlite_user_version(version: int) -> None:
    """SQLite's header mirrors the schema version (the backups record it); other engines have
    no such field, and their migrations skip it."""
    if op.get_bind().dialect.name == "sqlite":
        op.execute(f"PRAGMA user_version = {int(version)}")

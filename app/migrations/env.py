"""Alembic environment: migrations run on the connection `app.migrate` hands over."""

from __future__ import annotations

from alembic import context

from app.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `python -m app migrate`, not the alembic CLI")

context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()

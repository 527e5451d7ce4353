"""public handles of analyses (128 random bits each, existing rows included); admin sessions

Revision ID: 0002_public_handles
Revises: 0001_initial
Create Date: 2026-12-03
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from alembic import op

from app.migrations import set_sqlite_user_version

revision = "0002_public_handles"
down_revision = "0001_initial"
branch_labels = None
depends_on = None

HANDLE_BYTES = 16  # as app.records.new_public_id


def upgrade() -> None:
    with op.batch_alter_table("analyses") as batch:
        batch.add_column(sa.Column("public_id", sa.Text, nullable=True))
    conn = op.get_bind()
    ids = conn.execute(sa.text("SELECT id FROM analyses WHERE public_id IS NULL")).scalars()
    handles = [{"id": i, "handle": secrets.token_urlsafe(HANDLE_BYTES)} for i in ids.all()]
    if handles:
        conn.execute(sa.text("UPDATE analyses SET public_id = :handle WHERE id = :id"), handles)
    with op.batch_alter_table("analyses") as batch:
        batch.alter_column("public_id", existing_type=sa.Text, nullable=False)
        batch.create_index("ix_analyses_public_id", ["public_id"], unique=True)
    op.create_table(
        "admin_sessions",
        sa.Column("token_sha256", sa.Text, primary_key=True),
        sa.Column("csrf_token", sa.Text, nullable=False),
        sa.Column("password_fingerprint", sa.Text, nullable=False),
        sa.Column("created_at", sa.Text, nullable=False),
        sa.Column("expires_at", sa.Text, nullable=False),
    )
    set_sqlite_user_version(2)


def downgrade() -> None:
    op.drop_table("admin_sessions")
    with op.batch_alter_table("analyses") as batch:
        batch.drop_index("ix_analyses_public_id")
        batch.drop_column("public_id")
    set_sqlite_user_version(1)

"""drawings, analyses and the runtime configuration

Revision ID: 0001_initial
Revises:
Create Date: 2026-11-20
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from app.migrations import set_sqlite_user_version

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "drawings",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("filename", sa.Text, nullable=False),
        sa.Column("content_type", sa.Text, nullable=False),
        sa.Column("size_bytes", sa.Integer, nullable=False),
        sa.Column("sha256", sa.Text, nullable=False),
        sa.Column("age_years", sa.Integer, nullable=False),
        sa.Column("subject", sa.Text),
        sa.Column("storage_key", sa.Text, nullable=False, unique=True),
        sa.Column("created_at", sa.Text, nullable=False),
    )
    op.create_table(
        "analyses",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("drawing_id", sa.Integer, sa.ForeignKey("drawings.id"), nullable=False),
        sa.Column("created_at", sa.Text, nullable=False),
        sa.Column("model_version", sa.Text, nullable=False),
        sa.Column("age_group", sa.Text, nullable=False),
        sa.Column("anomaly_score", sa.Float, nullable=False),
        sa.Column("threshold", sa.Float, nullable=False),
        sa.Column("is_anomaly", sa.Boolean, nullable=False),
        sa.Column("normalised_score", sa.Float, nullable=False),
        sa.Column("processing_time_ms", sa.Float, nullable=False),
    )
    op.create_index("ix_analyses_created_at", "analyses", ["created_at"])
    op.create_table(
        "app_config",
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("updated_at", sa.Text, nullable=False),
    )
    set_sqlite_user_version(1)


def downgrade() -> None:
    op.drop_table("app_config")
    op.drop_index("ix_analyses_created_at", "analyses")
    op.drop_table("analyses")
    op.drop_table("drawings")
    set_sqlite_user_version(0)

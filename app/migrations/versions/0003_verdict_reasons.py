"""the reasons of each verdict: the features contributing most, in plain words (JSON)

Revision ID: 0003_verdict_reasons
Revises: 0002_public_handles
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from app.migrations import set_sqlite_user_version

revision = "0003_verdict_reasons"
down_revision = "0002_public_handles"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable: analyses recorded before this revision have no stored reasons.
    with op.batch_alter_table("analyses") as batch:
        batch.add_column(sa.Column("reasons", sa.Text, nullable=True))
    set_sqlite_user_version(3)


def downgrade() -> None:
    with op.batch_alter_table("analyses") as batch:
        batch.drop_column("reasons")
    set_sqlite_user_version(2)

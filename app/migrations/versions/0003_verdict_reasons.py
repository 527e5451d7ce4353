"""the reasons of each verdict: the features contributing most, in plain words (JSON)

Revision ID: 0003_verdict_reasons
Revises: 0001_initial
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_verdict_reasons"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable: analyses recorded before this revision have no stored reasons.
    with op.batch_alter_table("analyses") as batch:
        batch.add_column(sa.Column("reasons", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("analyses") as batch:
        batch.drop_column("reasons")

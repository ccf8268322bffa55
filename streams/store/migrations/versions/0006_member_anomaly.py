"""members: an anomaly alert keeps its detail (expected value and band, rarity, last hours)

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("members") as batch:
        batch.add_column(sa.Column("anomaly", sa.JSON))


def downgrade() -> None:
    with op.batch_alter_table("members") as batch:
        batch.drop_column("anomaly")

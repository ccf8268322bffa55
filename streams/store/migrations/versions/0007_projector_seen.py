"""projector_seen: when each projector last heard from Kafka, and how far behind it was

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from streams.store.tables import UtcDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "projector_seen",
        sa.Column("projector", sa.String(256), primary_key=True),
        sa.Column("seen_at", UtcDateTime, nullable=False),
        sa.Column("behind", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("projector_seen")

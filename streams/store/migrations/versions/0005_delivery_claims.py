"""status webhooks: a delivery is claimed (by whom, until when) before it is sent

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from streams.store.tables import UtcDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("status_deliveries") as batch:
        batch.add_column(sa.Column("claimed_by", sa.String(64)))
        batch.add_column(sa.Column("claimed_until", UtcDateTime))
    # what the delivery loops look for: not delivered, due, by when it is due
    op.create_index("ix_status_deliveries_due", "status_deliveries", ["next_at"],
                    postgresql_where=sa.text("delivered_at IS NULL"),
                    sqlite_where=sa.text("delivered_at IS NULL"))  # fmt: skip


def downgrade() -> None:
    op.drop_index("ix_status_deliveries_due", "status_deliveries")
    with op.batch_alter_table("status_deliveries") as batch:
        batch.drop_column("claimed_until")
        batch.drop_column("claimed_by")

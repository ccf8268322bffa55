"""status pages: updates, overrides, scheduled maintenance, subscribers, delivery marks

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from streams.store.tables import UtcDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "status_updates",
        sa.Column("update_id", sa.String(64), primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("incident_id", sa.String(256), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("audiences", sa.JSON, nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("components", sa.JSON, nullable=False),
        sa.Column("author", sa.String(256), nullable=False),
        sa.Column("at", UtcDateTime, nullable=False),
    )
    op.create_index("ix_status_updates_incident", "status_updates",
                    ["tenant", "incident_id", "at"])  # fmt: skip
    op.create_index("ix_status_updates_at", "status_updates", ["tenant", "at"])
    op.create_table(
        "status_overrides",
        sa.Column("tenant", sa.String(64), primary_key=True),
        sa.Column("component", sa.String(64), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("author", sa.String(256), nullable=False),
        sa.Column("at", UtcDateTime, nullable=False),
    )
    op.create_table(
        "status_maintenance",
        sa.Column("maintenance_id", sa.String(64), primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("components", sa.JSON, nullable=False),
        sa.Column("starts_at", UtcDateTime, nullable=False),
        sa.Column("ends_at", UtcDateTime, nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("audiences", sa.JSON, nullable=False),
        sa.Column("author", sa.String(256), nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
    )
    op.create_index("ix_status_maintenance_ends", "status_maintenance", ["tenant", "ends_at"])
    op.create_table(
        "status_subscribers",
        sa.Column("subscriber_id", sa.String(64), primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("page", sa.String(64), nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("secret", sa.String(128), nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("removed_at", UtcDateTime),
    )
    op.create_index("ix_status_subscribers_page", "status_subscribers", ["tenant", "page"])
    op.create_table(
        "status_deliveries",
        sa.Column("subscriber_id", sa.String(64), primary_key=True),
        sa.Column("update_id", sa.String(64), primary_key=True),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_at", UtcDateTime),
        sa.Column("delivered_at", UtcDateTime),
        sa.Column("last_error", sa.Text, nullable=False),
    )


def downgrade() -> None:
    for table in ("status_deliveries", "status_subscribers", "status_maintenance",
                  "status_overrides", "status_updates"):  # fmt: skip
        op.drop_table(table)

"""the incident store

Revision ID: 0001
Revises: (none)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "consumed_offsets",
        sa.Column("topic", sa.String(length=256), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("next_offset", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("topic", "partition"),
    )
    op.create_table(
        "incidents",
        sa.Column("incident_id", sa.String(length=256), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("group_key", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("priority", sa.String(length=2), nullable=False),
        sa.Column("service", sa.String(length=256), nullable=True),
        sa.Column("team", sa.String(length=256), nullable=True),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("opened_at", sa.DateTime(), nullable=False),
        sa.Column("acknowledged_at", sa.DateTime(), nullable=True),
        sa.Column("resolved_at", sa.DateTime(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("assignee", sa.String(length=256), nullable=True),
        sa.Column("escalation_policy", sa.String(length=256), nullable=True),
        sa.Column("escalation_level", sa.Integer(), nullable=False),
        sa.Column("snoozed_until", sa.DateTime(), nullable=True),
        sa.Column("flapping", sa.Boolean(), nullable=False),
        sa.Column("notified_targets", sa.JSON(), nullable=False),
        sa.Column("storm", sa.JSON(), nullable=True),
        sa.Column("alert_count", sa.Integer(), nullable=False),
        sa.Column("search", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("incident_id"),
    )
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.create_index(
            "ix_incidents_opened", ["tenant", "opened_at", "incident_id"], unique=False
        )
        batch_op.create_index(
            "ix_incidents_priority", ["tenant", "priority", "opened_at"], unique=False
        )
        batch_op.create_index(
            "ix_incidents_service", ["tenant", "service", "opened_at"], unique=False
        )
        batch_op.create_index(
            "ix_incidents_status", ["tenant", "status", "opened_at"], unique=False
        )
        batch_op.create_index("ix_incidents_team", ["tenant", "team", "opened_at"], unique=False)
        batch_op.create_index(
            "ix_incidents_updated", ["tenant", "updated_at", "incident_id"], unique=False
        )

    op.create_table(
        "members",
        sa.Column("incident_id", sa.String(length=256), nullable=False),
        sa.Column("fingerprint", sa.String(length=128), nullable=False),
        sa.Column("rule", sa.String(length=256), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("threshold", sa.Float(), nullable=True),
        sa.Column("first_seen", sa.DateTime(), nullable=False),
        sa.Column("last_seen", sa.DateTime(), nullable=False),
        sa.Column("repeats", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("incident_id", "fingerprint"),
    )
    op.create_table(
        "notifications",
        sa.Column("notification_id", sa.String(length=1024), nullable=False),
        sa.Column("incident_id", sa.String(length=256), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("target", sa.String(length=1024), nullable=False),
        sa.Column("escalation_level", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("notification_id"),
    )
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_notifications_incident_id"), ["incident_id"], unique=False
        )

    op.create_table(
        "overrides",
        sa.Column("override_id", sa.String(length=64), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("schedule", sa.String(length=256), nullable=False),
        sa.Column("user", sa.String(length=256), nullable=False),
        sa.Column("starts_at", sa.DateTime(), nullable=False),
        sa.Column("ends_at", sa.DateTime(), nullable=False),
        sa.Column("author", sa.String(length=256), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("override_id"),
    )
    op.create_table(
        "silences",
        sa.Column("silence_id", sa.String(length=64), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("matchers", sa.JSON(), nullable=False),
        sa.Column("starts_at", sa.DateTime(), nullable=False),
        sa.Column("ends_at", sa.DateTime(), nullable=False),
        sa.Column("author", sa.String(length=256), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("weekly", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("origin", sa.String(length=16), nullable=False),
        sa.Column("expired_at", sa.DateTime(), nullable=True),
        sa.Column("expired_by", sa.String(length=256), nullable=True),
        sa.PrimaryKeyConstraint("silence_id"),
    )
    op.create_table(
        "timeline",
        sa.Column("incident_id", sa.String(length=256), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("actor", sa.String(length=256), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("incident_id", "seq"),
    )
    with op.batch_alter_table("timeline", schema=None) as batch_op:
        batch_op.create_index("ix_timeline_kind_at", ["tenant", "kind", "at"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("timeline", schema=None) as batch_op:
        batch_op.drop_index("ix_timeline_kind_at")

    op.drop_table("timeline")
    op.drop_table("silences")
    op.drop_table("overrides")
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notifications_incident_id"))

    op.drop_table("notifications")
    op.drop_table("members")
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.drop_index("ix_incidents_updated")
        batch_op.drop_index("ix_incidents_team")
        batch_op.drop_index("ix_incidents_status")
        batch_op.drop_index("ix_incidents_service")
        batch_op.drop_index("ix_incidents_priority")
        batch_op.drop_index("ix_incidents_opened")

    op.drop_table("incidents")
    op.drop_table("consumed_offsets")

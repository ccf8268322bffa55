"""indexes for the incident list: a filter on status, team or service in priority order

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from alembic import op

revision = "0004"
# (on a branch without 0003: the lead sets this to "0003" when both are merged)
down_revision = "0003"
branch_labels = None
depends_on = None

# A filter and the priority order together: walking the priority keyset and filtering
# reads every row ahead of the first match, and teams, services and statuses are not
# spread evenly over priorities (a team that owns the P1s); with the filter's column
# first, the page is read in order and stops at the limit.
INDEXES = {f"ix_incidents_{c}_priority": ["tenant", c, "priority", "incident_id"]
           for c in ("status", "team", "service")}  # fmt: skip


def upgrade() -> None:
    for name, columns in INDEXES.items():
        op.create_index(name, "incidents", columns)


def downgrade() -> None:
    for name in INDEXES:
        op.drop_index(name, table_name="incidents")

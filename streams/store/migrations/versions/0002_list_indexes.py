"""indexes for the incident list: the priority keyset, and free text on PostgreSQL

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import structlog
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_incidents_priority_id", "incidents",
                    ["tenant", "priority", "incident_id"])  # fmt: skip
    if op.get_bind().dialect.name != "postgresql":
        return
    # `q` is a substring search (LIKE '%word%'): a trigram index answers it without a
    # scan. pg_trgm is a trusted extension (PostgreSQL 13+): a database owner may create
    # it; where that is refused the search still works, by a scan
    conn = op.get_bind()
    savepoint = conn.begin_nested()
    try:
        conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        conn.exec_driver_sql("CREATE INDEX ix_incidents_search_trgm ON incidents "
                             "USING gin (search gin_trgm_ops)")  # fmt: skip
        savepoint.commit()
    except Exception as exc:
        savepoint.rollback()
        structlog.get_logger(__name__).warning("store_no_trigram_index", error=str(exc)[:300])


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_incidents_search_trgm")
    op.drop_index("ix_incidents_priority_id", table_name="incidents")

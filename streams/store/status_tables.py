"""The status pages' tables: what responders wrote (updates, overrides, maintenance —
projected from the `commands` topic like silences) and the webhook subscribers with the
marks of what each was sent (written by the API, which owns them: they are not derived
from a topic, so a rebuild of the projection keeps them)."""

from __future__ import annotations

from sqlalchemy import JSON, Column, Index, Integer, String, Table, Text

from streams.store.tables import UtcDateTime, metadata

status_updates = Table(
    "status_updates", metadata,
    Column("update_id", String(64), primary_key=True),
    Column("tenant", String(64), nullable=False),
    Column("incident_id", String(256), nullable=False),
    Column("status", String(16), nullable=False),
    Column("message", Text, nullable=False),
    Column("audiences", JSON, nullable=False),
    Column("title", Text, nullable=False),
    Column("components", JSON, nullable=False),
    Column("author", String(256), nullable=False),
    Column("at", UtcDateTime, nullable=False),
)  # fmt: skip
Index("ix_status_updates_incident", status_updates.c.tenant, status_updates.c.incident_id,
      status_updates.c.at)  # fmt: skip
Index("ix_status_updates_at", status_updates.c.tenant, status_updates.c.at)

status_overrides = Table(
    "status_overrides", metadata,
    Column("tenant", String(64), primary_key=True),
    Column("component", String(64), primary_key=True),
    Column("state", String(16), nullable=False),
    Column("reason", Text, nullable=False),
    Column("author", String(256), nullable=False),
    Column("at", UtcDateTime, nullable=False),
)  # fmt: skip

status_maintenance = Table(
    "status_maintenance", metadata,
    Column("maintenance_id", String(64), primary_key=True),
    Column("tenant", String(64), nullable=False),
    Column("components", JSON, nullable=False),
    Column("starts_at", UtcDateTime, nullable=False),
    Column("ends_at", UtcDateTime, nullable=False),
    Column("title", Text, nullable=False),
    Column("message", Text, nullable=False),
    Column("audiences", JSON, nullable=False),
    Column("author", String(256), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)  # fmt: skip
Index("ix_status_maintenance_ends", status_maintenance.c.tenant, status_maintenance.c.ends_at)

status_subscribers = Table(
    "status_subscribers", metadata,
    Column("subscriber_id", String(64), primary_key=True),
    Column("tenant", String(64), nullable=False),
    Column("page", String(64), nullable=False),
    Column("url", Text, nullable=False),
    # the HMAC key of its deliveries: given to the subscriber once, kept to sign
    Column("secret", String(128), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("removed_at", UtcDateTime),
)  # fmt: skip
Index("ix_status_subscribers_page", status_subscribers.c.tenant, status_subscribers.c.page)

# one row per (subscriber, update) once a delivery is due: delivered, or when to (re)try;
# a delivery loop claims a row (its id, a lease) before it sends, so one sends it
status_deliveries = Table(
    "status_deliveries", metadata,
    Column("subscriber_id", String(64), primary_key=True),
    Column("update_id", String(64), primary_key=True),
    Column("attempts", Integer, nullable=False),
    Column("next_at", UtcDateTime),
    Column("delivered_at", UtcDateTime),
    Column("last_error", Text, nullable=False),
    Column("claimed_by", String(64)),
    Column("claimed_until", UtcDateTime),
)  # fmt: skip
Index("ix_status_deliveries_due", status_deliveries.c.next_at,
      postgresql_where=status_deliveries.c.delivered_at.is_(None),
      sqlite_where=status_deliveries.c.delivered_at.is_(None))  # fmt: skip

PROJECTED_STATUS = (status_updates, status_overrides, status_maintenance)

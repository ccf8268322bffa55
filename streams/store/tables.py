"""The store's tables (SQLAlchemy Core), the same on SQLite and PostgreSQL.

Instants are kept as naive UTC (`UtcDateTime`): SQLite has no time-zone type, and one
representation on both engines keeps comparisons and sorting identical. Label sets and
details are JSON. Rows carry the tenant they belong to; every query filters by it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
)


class UtcDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out; stored as naive UTC."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("UtcDateTime: a naive datetime is ambiguous")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # (SQLite hands back text for expressions)
            value = datetime.fromisoformat(value)
        return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]


metadata = MetaData()

incidents = Table(
    "incidents", metadata,
    Column("incident_id", String(256), primary_key=True),
    Column("tenant", String(64), nullable=False),
    Column("group_key", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("title", Text, nullable=False),
    Column("severity", String(16), nullable=False),
    Column("priority", String(2), nullable=False),
    Column("service", String(256)),
    Column("team", String(256)),
    Column("labels", JSON, nullable=False),
    Column("opened_at", UtcDateTime, nullable=False),
    Column("acknowledged_at", UtcDateTime),
    Column("resolved_at", UtcDateTime),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("assignee", String(256)),
    Column("escalation_policy", String(256)),
    Column("escalation_level", Integer, nullable=False),
    Column("snoozed_until", UtcDateTime),
    Column("flapping", Boolean, nullable=False),
    Column("notified_targets", JSON, nullable=False),
    Column("storm", JSON),
    Column("alert_count", Integer, nullable=False),
    # lower-cased title and labels: what the free-text filter searches
    Column("search", Text, nullable=False),
)  # fmt: skip
Index("ix_incidents_opened", incidents.c.tenant, incidents.c.opened_at, incidents.c.incident_id)
Index("ix_incidents_updated", incidents.c.tenant, incidents.c.updated_at, incidents.c.incident_id)
Index("ix_incidents_status", incidents.c.tenant, incidents.c.status, incidents.c.opened_at)
Index("ix_incidents_service", incidents.c.tenant, incidents.c.service, incidents.c.opened_at)
Index("ix_incidents_team", incidents.c.tenant, incidents.c.team, incidents.c.opened_at)
Index("ix_incidents_priority", incidents.c.tenant, incidents.c.priority, incidents.c.opened_at)
# the keyset order of `sort=priority`: a filtered, priority-sorted page walks it and stops
Index("ix_incidents_priority_id", incidents.c.tenant, incidents.c.priority,
      incidents.c.incident_id)  # fmt: skip
# a filter with that order: the filter's column first, so the page is read in order
# however the filtered values are spread over priorities
for _col in ("status", "team", "service"):
    Index(f"ix_incidents_{_col}_priority", incidents.c.tenant, incidents.c[_col],
          incidents.c.priority, incidents.c.incident_id)  # fmt: skip
# (on PostgreSQL the free-text search also has a trigram index, made by the migrations)

members = Table(
    "members", metadata,
    Column("incident_id", String(256), primary_key=True),
    Column("fingerprint", String(128), primary_key=True),
    Column("rule", String(256), nullable=False),
    Column("status", String(16), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("labels", JSON, nullable=False),
    Column("value", Float),
    Column("threshold", Float),
    Column("first_seen", UtcDateTime, nullable=False),
    Column("last_seen", UtcDateTime, nullable=False),
    Column("repeats", Integer, nullable=False),
    Column("anomaly", JSON),  # an anomaly alert's detail (schemas.alerts.AnomalyDetail)
)  # fmt: skip

timeline = Table(
    "timeline", metadata,
    Column("incident_id", String(256), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("tenant", String(64), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Column("actor", String(256), nullable=False),
    Column("message", Text, nullable=False),
    Column("details", JSON, nullable=False),
)  # fmt: skip
Index("ix_timeline_kind_at", timeline.c.tenant, timeline.c.kind, timeline.c.at)

notifications = Table(
    "notifications", metadata,
    Column("notification_id", String(1024), primary_key=True),
    Column("incident_id", String(256), nullable=False, index=True),
    Column("tenant", String(64), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("target", String(1024), nullable=False),
    Column("escalation_level", Integer, nullable=False),
    Column("at", UtcDateTime, nullable=False),
)  # fmt: skip

silences = Table(
    "silences", metadata,
    Column("silence_id", String(64), primary_key=True),
    Column("tenant", String(64), nullable=False),
    Column("matchers", JSON, nullable=False),
    Column("starts_at", UtcDateTime, nullable=False),
    Column("ends_at", UtcDateTime, nullable=False),
    Column("author", String(256), nullable=False),
    Column("comment", Text, nullable=False),
    Column("weekly", JSON),
    Column("created_at", UtcDateTime, nullable=False),
    Column("origin", String(16), nullable=False),
    Column("expired_at", UtcDateTime),
    Column("expired_by", String(256)),
)  # fmt: skip

overrides = Table(
    "overrides", metadata,
    Column("override_id", String(64), primary_key=True),
    Column("tenant", String(64), nullable=False),
    Column("schedule", String(256), nullable=False),
    Column("user", String(256), nullable=False),
    Column("starts_at", UtcDateTime, nullable=False),
    Column("ends_at", UtcDateTime, nullable=False),
    Column("author", String(256), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)  # fmt: skip

# the next offset to apply per topic partition, written in the transaction of the rows
offsets = Table(
    "consumed_offsets", metadata,
    Column("topic", String(256), primary_key=True),
    Column("partition", Integer, primary_key=True),
    Column("next_offset", BigInteger, nullable=False),
)  # fmt: skip

# when each projector last heard from Kafka and how far behind it was: the console says
# so when none has for a while (the store then shows an old picture of the incidents)
projector_seen = Table(
    "projector_seen", metadata,
    Column("projector", String(256), primary_key=True),
    Column("seen_at", UtcDateTime, nullable=False),
    Column("behind", BigInteger, nullable=False),
)  # fmt: skip

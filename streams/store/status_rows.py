"""Status page changes (`Command`s of action `status`) applied to the store, in the order
they were consumed, inside the projector's transaction: an update and a maintenance once
per command id, an override replacing the component's previous one (or cleared), a
cancelled maintenance gone."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, and_, delete
from sqlalchemy.dialects import postgresql, sqlite

from schemas.commands import Command
from streams.store.status_tables import status_maintenance, status_overrides, status_updates


def _insert(dialect: str, table: Any) -> Any:
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


def apply_status(conn: Connection, cmds: Sequence[Command]) -> dict[str, int]:
    done: dict[str, int] = {}
    dialect = conn.dialect.name
    for cmd in cmds:
        ch = cmd.status
        if ch is None:
            continue
        if ch.update is not None:
            u = ch.update
            conn.execute(_insert(dialect, status_updates).on_conflict_do_nothing(), [{
                "update_id": cmd.event_id, "tenant": cmd.tenant, "incident_id": u.incident_id,
                "status": u.status, "message": u.message, "audiences": list(u.audiences),
                "title": u.title, "components": list(u.components), "author": u.author,
                "at": cmd.at,
            }])  # fmt: skip
        elif ch.override is not None:
            o = ch.override
            conn.execute(delete(status_overrides).where(and_(
                status_overrides.c.tenant == cmd.tenant,
                status_overrides.c.component == o.component)))  # fmt: skip
            if o.state is not None:
                conn.execute(status_overrides.insert(), [{
                    "tenant": cmd.tenant, "component": o.component, "state": o.state,
                    "reason": o.reason, "author": o.author, "at": cmd.at,
                }])  # fmt: skip
        elif ch.maintenance is not None:
            m = ch.maintenance
            conn.execute(_insert(dialect, status_maintenance).on_conflict_do_nothing(), [{
                "maintenance_id": cmd.event_id, "tenant": cmd.tenant,
                "components": list(m.components), "starts_at": m.starts_at,
                "ends_at": m.ends_at, "title": m.title, "message": m.message,
                "audiences": list(m.audiences), "author": m.author, "created_at": cmd.at,
            }])  # fmt: skip
        elif ch.cancel is not None:
            mc = status_maintenance.c
            gone = and_(mc.maintenance_id == ch.cancel.maintenance_id, mc.tenant == cmd.tenant)
            conn.execute(delete(status_maintenance).where(gone))
        done[f"status_{ch.kind}"] = done.get(f"status_{ch.kind}", 0) + 1
    return done

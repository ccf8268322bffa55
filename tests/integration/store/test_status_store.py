"""Status pages over the store, on SQLite and PostgreSQL: status commands projected like
the other commands (once per command id), and the page drawn from them and the incidents:
states, the updates each audience may read, maintenance, history, tenants apart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count as counter

import orjson
from sqlalchemy import Engine, func, select

from schemas import Command, Incident, encode
from schemas.status import PageView, StatusChange, StatusConfig
from streams.status.store import page_view
from streams.store.projection import Rec, apply_batch
from streams.store.status_tables import status_updates

NOW = datetime(2026, 5, 20, 12, 0, tzinfo=UTC)
STATUS = StatusConfig.model_validate({
    "components": [
        {"id": "shop", "name": "Shop", "group": "Storefront", "services": ["checkout"]},
        {"id": "search", "name": "Search", "group": "Storefront", "services": ["search"]},
    ],
    "pages": [{"id": "public", "audience": "public", "title": "Acme status"},
              {"id": "staff", "audience": "private", "title": "Acme staff"},
              {"id": "noc", "audience": "internal", "title": "Acme NOC"}],
})  # fmt: skip
_offsets = counter()
_seconds = counter()


def _incident(iid: str, status: str = "triggered", priority: str = "P2", tenant: str = "acme",
              version: int = 1, resolved_at: datetime | None = None) -> Incident:  # fmt: skip
    return Incident(incident_id=iid, group_key=f"{tenant}/{iid}", version=version, status=status,
                    title="disk full on db-7.internal (value 99.1)", severity="critical",
                    priority=priority, service="checkout",
                    labels={"host": "db-7.internal", "runbook": "https://wiki/rb/disk"},
                    opened_at=NOW - timedelta(hours=2), resolved_at=resolved_at,
                    tenant=tenant)  # type: ignore[arg-type]  # fmt: skip


def _change(kind: str, tenant: str = "acme", event_id: str | None = None,
            **spec: object) -> Command:  # fmt: skip
    fields = {"author": "carol", **spec}
    extra = {"event_id": event_id} if event_id else {}
    # each change a second after the one before, as responders write them
    at = NOW - timedelta(hours=1) + timedelta(seconds=next(_seconds))
    return Command(action="status", actor="carol", at=at, tenant=tenant,
                   status=StatusChange.model_validate({"kind": kind, kind: fields}),
                   **extra)  # type: ignore[arg-type]  # fmt: skip


def _apply(engine: Engine, *values: Incident | Command) -> dict[str, int]:
    recs = [Rec("incidents" if isinstance(v, Incident) else "commands",
                "incidents" if isinstance(v, Incident) else "commands", 0, next(_offsets),
                encode(v)) for v in values]  # fmt: skip
    with engine.begin() as conn:
        return apply_batch(conn, recs).applied


def _page(engine: Engine, page: str, tenant: str = "acme", now: datetime = NOW) -> PageView:
    with engine.connect() as conn:
        p = STATUS.page(page)
        assert p is not None
        return page_view(conn, tenant, STATUS, p, now)


PUBLIC_TEXT = "Some checkouts fail; we are on it."
PRIVATE_TEXT = "The primary database host ran out of disk; failing over."


def test_a_page_shows_each_audience_its_own_updates_and_never_internal_details(
    engine: Engine,
) -> None:
    _apply(engine, _incident("inc-1"),
           _change("update", incident_id="inc-1", status="investigating", message=PUBLIC_TEXT,
                   audiences=["public", "private"], title="Checkout errors"),
           _change("update", incident_id="inc-1", status="identified", message=PRIVATE_TEXT,
                   audiences=["private", "internal"]))  # fmt: skip
    public = _page(engine, "public")
    states = {c.id: c.state for c in public.components}
    assert states == {"shop": "partial_outage", "search": "operational"}
    assert public.state == "partial_outage"
    [story] = public.active
    assert story.title == "Checkout errors" and story.components == ["Shop"]
    assert [u.message for u in story.updates] == [PUBLIC_TEXT]
    raw = public.model_dump_json()
    for secret in ("db-7", "99.1", "wiki/rb", PRIVATE_TEXT, "disk full"):
        assert secret not in raw
    private = _page(engine, "staff")
    assert [u.message for u in private.active[0].updates] == [PRIVATE_TEXT, PUBLIC_TEXT]
    internal = _page(engine, "noc")
    assert [u.message for u in internal.active[0].updates] == [PRIVATE_TEXT]


def test_a_replayed_change_is_applied_once(engine: Engine) -> None:
    cmd = _change("update", incident_id="inc-1", status="investigating", message="m",
                  audiences=["public"], event_id="evt-1")  # fmt: skip
    _apply(engine, cmd)
    _apply(engine, cmd)  # the same command at a later offset (a producer retry)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(status_updates)).scalar() == 1


def test_resolved_incidents_become_history_with_their_public_updates(engine: Engine) -> None:
    _apply(engine, _incident("inc-1", priority="P1"),
           _change("update", incident_id="inc-1", status="investigating", message=PUBLIC_TEXT,
                   audiences=["public"]),
           _incident("inc-1", status="resolved", priority="P1", version=2,
                     resolved_at=NOW - timedelta(hours=1)))  # fmt: skip
    public = _page(engine, "public")
    assert {c.id: c.state for c in public.components}["shop"] == "operational"
    assert public.active == []
    [story] = public.past
    assert story.status == "resolved" and [u.message for u in story.updates] == [PUBLIC_TEXT]
    shop = next(h for h in public.history if h.id == "shop")
    assert len(shop.days) == 90 and shop.days[-1].state == "major_outage"
    assert shop.days[-1].down_s == 3600


def test_overrides_hold_until_cleared_and_maintenance_shows_ahead(engine: Engine) -> None:
    _apply(engine, _change("override", component="search", state="degraded", reason="slow"),
           _change("maintenance", components=["shop"], starts_at=NOW + timedelta(days=1),
                   ends_at=NOW + timedelta(days=1, hours=2), title="Database upgrade",
                   audiences=["public"]))  # fmt: skip
    public = _page(engine, "public")
    states = {c.id: c.state for c in public.components}
    assert states == {"shop": "operational", "search": "degraded"}
    [m] = public.maintenance
    assert m.state == "scheduled" and m.title == "Database upgrade" and m.components == ["Shop"]
    during = _page(engine, "public", now=NOW + timedelta(days=1, hours=1))
    assert {c.id: c.state for c in during.components}["shop"] == "maintenance"
    assert _page(engine, "staff").maintenance == []
    _apply(engine, _change("override", component="search", state=None))
    states = {c.id: c.state for c in _page(engine, "public").components}
    assert states["search"] == "operational"


def test_another_tenants_incident_and_updates_never_show(engine: Engine) -> None:
    _apply(engine, _incident("other-1", priority="P1", tenant="globex"),
           _change("update", tenant="globex", incident_id="other-1", status="identified",
                   message="globex text", audiences=["public"]))  # fmt: skip
    public = _page(engine, "public")
    assert public.state == "operational" and public.active == []
    assert "globex" not in orjson.dumps(public.model_dump(mode="json")).decode()

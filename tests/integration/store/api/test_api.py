"""The REST API over a store the real projector filled from the real broker, on SQLite and
on PostgreSQL: what a client sees, and the errors it gets."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from openapi_spec_validator import validate
from sqlalchemy import Engine

from harness.incidents import history, produce
from streams.catalog import Catalog
from streams.kafka import read_topic
from streams.settings import KafkaSettings
from streams.store import tables
from streams.store.projector import Projector
from tests.integration.store.api.conftest import Served
from tests.integration.store.support import count

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
N = 30


async def until(what: str, probe: Any, within: float = 60.0) -> Any:
    deadline = time.monotonic() + within
    while True:
        got = await probe()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


@pytest.fixture
async def seeded(kafka_settings: KafkaSettings, running_projector: Projector, engine: Engine,
                 served: Served) -> Served:  # fmt: skip
    produce(kafka_settings, list(history(N, T0)))
    await until("the incidents", lambda: _ready(engine))
    return served


async def _ready(engine: Engine) -> bool:
    return count(engine, tables.incidents) == N and count(engine, tables.timeline) >= 4 * N


async def test_list_filters_sorts_and_pages_without_gaps_or_repeats(seeded: Served) -> None:
    async with seeded.client() as c:
        first = (await c.get("/api/v1/incidents", params={"limit": 7})).json()
        assert [i["opened_at"] for i in first["items"]][:2] == [
            (T0 + timedelta(minutes=N - 1)).isoformat().replace("+00:00", "Z"),
            (T0 + timedelta(minutes=N - 2)).isoformat().replace("+00:00", "Z"),
        ], "newest first by default"
        seen, cursor = [], None
        while True:
            params: dict[str, Any] = {"limit": 7, "sort": "priority"}
            if cursor:
                params["cursor"] = cursor
            page = (await c.get("/api/v1/incidents", params=params)).json()
            seen += page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert len(seen) == N and len({i["incident_id"] for i in seen}) == N
        assert [i["priority"] for i in seen] == sorted(i["priority"] for i in seen)
        open_ = (await c.get("/api/v1/incidents", params={"status": "acknowledged"})).json()
        assert len(open_["items"]) == N // 10 and {i["status"] for i in open_["items"]} == {
            "acknowledged"}  # fmt: skip
        both = (await c.get("/api/v1/incidents?status=acknowledged,resolved&limit=500")).json()
        assert len(both["items"]) == N
        svc = (await c.get("/api/v1/incidents", params={"service": "checkout"})).json()
        assert svc["items"] and {i["service"] for i in svc["items"]} == {"checkout"}
        text = (await c.get("/api/v1/incidents", params={"q": "HOST=web-000007"})).json()
        assert [i["labels"]["host"] for i in text["items"]] == ["web-000007"]
        span = (await c.get("/api/v1/incidents", params={
            "since": (T0 + timedelta(minutes=10)).isoformat(),
            "until": (T0 + timedelta(minutes=15)).isoformat()})).json()  # fmt: skip
        assert len(span["items"]) == 5


async def test_one_incident_has_members_notifications_and_timeline(seeded: Served) -> None:
    async with seeded.client() as c:
        iid = (await c.get("/api/v1/incidents", params={"sort": "opened_at", "limit": 1})
               ).json()["items"][0]["incident_id"]  # fmt: skip
        doc = (await c.get(f"/api/v1/incidents/{iid}")).json()
    assert doc["status"] == "resolved"
    assert [m["threshold"] for m in doc["members"]] == [90.0]
    assert [e["kind"] for e in doc["timeline"]] == ["opened", "notified", "acknowledged",
                                                    "note", "resolved"]  # fmt: skip
    assert {n["kind"] for n in doc["notifications"]} >= {"trigger", "resolve"}
    assert all(n["channel"] in ("slack", "slack_dm", "pagerduty") for n in doc["notifications"])


async def test_errors_name_what_is_wrong(seeded: Served) -> None:
    async with seeded.client(None) as anon:
        assert (await anon.get("/api/v1/incidents")).status_code == 401
        spec = await anon.get("/api/v1/openapi.json")
        assert spec.status_code == 200
    async with httpx.AsyncClient(base_url=seeded.url,
                                 headers={"Authorization": "Bearer nope"}) as bad:  # fmt: skip
        assert (await bad.get("/api/v1/incidents")).status_code == 401
    async with seeded.client("viewer") as c:
        r = await c.get("/api/v1/incidents", params={"status": "sleeping"})
        assert r.status_code == 400 and r.json()["field"] == "status.0"
        assert "query.status.0" in r.json()["error"]
        r = await c.get("/api/v1/incidents", params={"limit": "9999"})
        assert r.status_code == 400 and r.json()["field"] == "limit"
        r = await c.get("/api/v1/incidents", params={"cursor": "garbage"})
        assert r.status_code == 400 and r.json()["field"] == "cursor"
        assert (await c.get("/api/v1/incidents/inc-000000000000-0000000000")).status_code == 404
        # aiohttp's own refusals come in the API's shape too
        r = await c.get("/api/v1/incidentz")
        assert r.status_code == 404 and "GET /api/v1/incidentz" in r.json()["error"]
        r = await c.put("/api/v1/silences", json={})
        assert r.status_code == 405 and "POST" in r.headers["Allow"] and r.json()["error"]
        iid = (await c.get("/api/v1/incidents")).json()["items"][0]["incident_id"]
        r = await c.post(f"/api/v1/incidents/{iid}/resolve")
        assert r.status_code == 403 and "viewer" in r.json()["error"], "a viewer cannot resolve"
    async with seeded.client("responder") as c:
        resolved = (await c.get("/api/v1/incidents", params={"status": "resolved"})
                    ).json()["items"][0]["incident_id"]  # fmt: skip
        r = await c.post(f"/api/v1/incidents/{resolved}/ack")
        assert r.status_code == 409 and "resolved" in r.json()["error"]
        r = await c.post(f"/api/v1/incidents/{resolved}/snooze", json={"duration": "PT0S"})
        assert r.status_code == 400 and r.json()["field"] == "duration"
        r = await c.post("/api/v1/incidents/inc-000000000000-0000000000/ack")
        assert r.status_code == 404
        r = await c.post(
            "/api/v1/silences",
            json={
                "matchers": [{"label": "host", "op": "=~", "value": "web-("}],
                "duration": "PT1H",
            },
        )
        assert r.status_code == 400 and "not a regular expression" in r.json()["error"]
        r = await c.post("/api/v1/silences", json={
            "matchers": [{"label": "host", "value": "x"}], "starts_at": T0.isoformat(),
            "ends_at": (T0 - timedelta(hours=1)).isoformat()})  # fmt: skip
        assert r.status_code == 400 and r.json()["field"] == "ends_at"


async def test_an_action_is_a_command_on_kafka_answered_202(
    seeded: Served, kafka_settings: KafkaSettings, topics: Catalog
) -> None:
    async with seeded.client("responder") as c:
        iid = (await c.get("/api/v1/incidents", params={"status": "acknowledged"})
               ).json()["items"][0]["incident_id"]  # fmt: skip
        r = await c.post(f"/api/v1/incidents/{iid}/note", json={"text": "db failover done"})
        assert r.status_code == 202
        cid = r.json()["command_id"]
        r = await c.post(f"/api/v1/incidents/{iid}/priority", json={"priority": "P1"})
        assert r.status_code == 202
    commands = read_topic(kafka_settings, topics.name("commands"), timeout=20)
    assert any(cid.encode() in v and b'"actor":"carol"' in v for v in commands)


async def test_silences_are_created_listed_and_expired(seeded: Served) -> None:
    async with seeded.client("responder") as c:
        r = await c.post("/api/v1/silences", json={
            "matchers": [{"label": "service", "value": "search"}], "duration": "PT2H",
            "comment": "reindex"})  # fmt: skip
        assert r.status_code == 202
        sid = r.json()["silence_id"]
        weekly = await c.post("/api/v1/silences", json={
            "matchers": [{"label": "service", "value": "db"}], "duration": "P365D",
            "weekly": {"days": ["sun"], "start": "02:00", "duration": "PT2H",
                       "timezone": "Europe/Berlin"}, "comment": "patch night"})  # fmt: skip
        assert weekly.status_code == 202

        async def listed() -> list[dict[str, Any]]:
            return list((await c.get("/api/v1/silences", params={"state": "active"})
                         ).json()["items"])  # fmt: skip

        items = await until("both silences", lambda: _n(listed, 2))
        mine = next(s for s in items if s["silence_id"] == sid)
        assert mine["author"] == "carol" and mine["comment"] == "reindex"
        assert (await c.delete(f"/api/v1/silences/{sid}")).status_code == 202

        async def expired() -> bool:
            r = await c.get(f"/api/v1/silences/{sid}")
            return bool(r.json()["state"] == "expired")

        await until("the expiry", expired)
        again = await c.delete(f"/api/v1/silences/{sid}")
        assert again.status_code == 409
        assert (await c.delete("/api/v1/silences/nope")).status_code == 404


async def _n(probe: Any, n: int) -> Any:
    items = await probe()
    return items if len(items) == n else None


async def test_reports_postmortems_and_oncall(seeded: Served) -> None:
    async with seeded.client() as c:
        since = T0 - timedelta(hours=1)
        r = (await c.get("/api/v1/reports", params={"since": since.isoformat(),
                                                    "until": (T0 + timedelta(days=1)).isoformat(),
                                                    "group_by": "service"})).json()  # fmt: skip
        assert r["total"]["incidents"] == N and r["total"]["resolved"] == N - N // 10
        assert r["total"]["mtta_s"] is not None and r["total"]["mttr_p99_s"] >= r["total"][
            "mttr_p50_s"]  # fmt: skip
        assert {g["key"] for g in r["groups"]} == {"search", "checkout", "db"}
        assert r["noisiest_rules"] and r["top_alerts"]
        assert (await c.get("/api/v1/reports", params={"since": "yesterday"})).status_code == 400
        done = (await c.get("/api/v1/incidents", params={"status": "resolved", "limit": 1})
                ).json()["items"][0]  # fmt: skip
        md = (await c.get(f"/api/v1/incidents/{done['incident_id']}/postmortem")).text
        assert md.startswith("# Postmortem: ") and "## Root cause" in md
        assert "value 9" in md and "vs threshold 90" in md and "looking into it" in md
        oncall = (await c.get("/api/v1/oncall")).json()
        assert {s["schedule"] for s in oncall["items"]} == {"platform-primary",
                                                            "payments-primary"}  # fmt: skip


async def test_the_openapi_document_is_valid_3_1_and_covers_every_route(seeded: Served) -> None:
    async with seeded.client(None) as c:
        doc = (await c.get("/api/v1/openapi.json")).json()
    assert doc["openapi"].startswith("3.1")
    validate(doc)
    from aiohttp import web

    from streams.api.app import Api
    from streams.api.server import application

    api = Api(seeded.api.settings, seeded.api.engine, seeded.api.cfg)
    app: web.Application = application(api)
    routes = {(r.method.lower(), r.resource.canonical) for r in app.router.routes()
              if r.resource is not None and r.resource.canonical.startswith("/api/")}  # fmt: skip
    routes = {(m, p) for m, p in routes if m != "head"}
    documented = {(m, p.replace("{action}", "")) for p, ops in doc["paths"].items() for m in ops}
    served = {(m, p) for m, p in routes if "{action}" not in p}
    assert served <= documented
    actions = {p.rsplit("/", 1)[1] for m, p in documented if m == "post" and "{incident_id}/" in p}
    assert actions == {
        "ack",
        "resolve",
        "escalate",
        "reassign",
        "note",
        "snooze",
        "priority",
        "updates",
    }  # (a status-page update: streams/status)


async def test_metrics_count_requests_by_route_pattern_and_status(seeded: Served) -> None:
    async with seeded.client(None) as anon:
        assert (await anon.get("/api/v1/incidents")).status_code == 401
        assert (await anon.get("/api/v1/incidents/no-such-incident")).status_code == 401
        text = (await anon.get("/metrics")).text
    assert 'tocsin_api_requests_total{code="401",route="/api/v1/incidents"} 1.0' in text
    assert 'route="/api/v1/incidents/{incident_id}"' in text, "the pattern, not the id"
    assert "no-such-incident" not in text
    assert "tocsin_api_request_seconds_bucket" in text

"""Status pages through the API worker, over the real broker and projector, on SQLite and
PostgreSQL: a responder's update reaches the page of each audience it names (and no
other), bad updates write nothing, private and internal pages need their credentials,
and a webhook subscriber gets every update once, signed, after a failed first try."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from aiohttp import web
from sqlalchemy import Engine

from schemas import Incident, encode
from schemas.config import Config
from schemas.status import StatusConfig
from streams.api.app import Api
from streams.api.auth import digest
from streams.api.server import application
from streams.catalog import Catalog
from streams.kafka import make_producer
from streams.settings import KafkaSettings
from streams.store.projector import Projector
from streams.store.status_tables import status_updates
from tests.integration.store.api.conftest import TOKENS, free_port
from tests.integration.store.api.test_api import until
from tests.integration.store.support import count

PAGE_TOKEN = "tsn_status_page_reader"
STATUS = StatusConfig.model_validate({
    "components": [{"id": "shop", "name": "Shop", "services": ["checkout"]},
                   {"id": "search", "name": "Search", "services": ["search"]}],
    "pages": [{"id": "public", "audience": "public", "title": "Acme status"},
              {"id": "staff", "audience": "private", "title": "Acme staff",
               "tokens": [digest(PAGE_TOKEN)]},
              {"id": "noc", "audience": "internal", "title": "Acme NOC"}],
})  # fmt: skip
NOW = datetime.now(UTC)


def incident(iid: str, status: str = "triggered", version: int = 1) -> Incident:
    return Incident(incident_id=iid, group_key=f"default/{iid}", version=version, status=status,
                    title="disk full on db-7.internal", severity="critical", priority="P2",
                    service="checkout", labels={"host": "db-7.internal"},
                    opened_at=NOW - timedelta(minutes=30),
                    resolved_at=NOW if status == "resolved" else None)  # type: ignore[arg-type]  # fmt: skip


def publish(settings: KafkaSettings, *incs: Incident) -> None:
    p = make_producer(settings)
    for inc in incs:
        p.produce(Catalog(settings).name("incidents"), encode(inc), key=inc.incident_id.encode())
    assert p.flush(30) == 0


@contextlib.asynccontextmanager
async def serve_status(api: Api) -> AsyncIterator[str]:
    runner = web.AppRunner(application(api, {"default": STATUS}, deliver_every=0.2))
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@pytest.fixture
async def site(kafka_settings: KafkaSettings, topics: Catalog, engine: Engine,
               api_config: Config, running_projector: Projector) -> AsyncIterator[str]:  # fmt: skip
    publish(kafka_settings, incident("inc-open"), incident("inc-done", "resolved"))
    async with serve_status(Api(kafka_settings, engine, api_config)) as url:
        async with httpx.AsyncClient(base_url=url) as c:
            await until("the incidents", lambda: _shop_down(c))
        yield url


async def _shop_down(c: httpx.AsyncClient) -> bool:
    doc = (await c.get("/status/default/public/index.json")).json()
    return {x["id"]: x["state"] for x in doc["components"]}.get("shop") == "partial_outage"


def client(url: str, role: str | None = "responder") -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {TOKENS[role]}"} if role else {}
    return httpx.AsyncClient(base_url=url, headers=headers, timeout=30)


PUBLIC = "Checkout is failing for some customers; we are investigating."
PRIVATE = "Failing over the primary database; expect a minute of errors."


async def test_updates_reach_the_pages_of_their_audiences_only(site: str) -> None:
    async with client(site) as c:
        r = await c.post("/api/v1/incidents/inc-open/updates", json={
            "status": "investigating", "message": PUBLIC, "audiences": ["public", "private"],
            "title": "Checkout errors"})  # fmt: skip
        assert r.status_code == 202, r.text
        r = await c.post("/api/v1/incidents/inc-open/updates", json={
            "status": "identified", "message": PRIVATE, "audiences": ["private"]})  # fmt: skip
        assert r.status_code == 202, r.text
    async with httpx.AsyncClient(base_url=site) as anyone:

        async def both_private() -> bool:
            auth = {"Authorization": f"Bearer {PAGE_TOKEN}"}
            doc = (await anyone.get("/status/default/staff/index.json", headers=auth)).json()
            return len(doc["active"][0]["updates"]) == 2 if doc["active"] else False

        await until("both updates on the private page", both_private)

        async def public_page() -> str:
            html = (await anyone.get("/status/default/public")).text
            return html if PUBLIC in html else ""

        # the public page is drawn once for everyone every couple of seconds
        html = await until("the update on the public page", public_page)
        assert PUBLIC in html and "Checkout errors" in html
        assert PRIVATE not in html and "db-7" not in html
        assert "<script" not in html
        feed = await anyone.get("/status/default/public/feed.atom")
        assert feed.headers["Content-Type"].startswith("application/atom+xml")
        assert PUBLIC in feed.text and PRIVATE not in feed.text


async def test_bad_updates_are_refused_and_write_nothing(site: str, engine: Engine) -> None:
    async with client(site) as c:
        r = await c.post("/api/v1/incidents/inc-done/updates", json={
            "status": "monitoring", "message": "m", "audiences": ["public"]})  # fmt: skip
        assert r.status_code == 409 and "resolved" in r.json()["error"]
        r = await c.post("/api/v1/incidents/inc-open/updates", json={
            "status": "monitoring", "message": "m", "audiences": ["everyone"]})  # fmt: skip
        assert r.status_code == 400 and r.json()["error"].startswith("body.audiences.0")
        r = await c.post("/api/v1/incidents/inc-open/updates", json={
            "status": "monitoring", "message": "m", "audiences": ["public"],
            "components": ["nope"]})  # fmt: skip
        assert r.status_code == 400 and r.json()["field"] == "components.0"
        r = await c.post("/api/v1/incidents/inc-nobody/updates", json={
            "status": "monitoring", "message": "m", "audiences": ["public"]})  # fmt: skip
        assert r.status_code == 404
    async with client(site, "viewer") as c:
        r = await c.post("/api/v1/incidents/inc-open/updates", json={
            "status": "monitoring", "message": "m", "audiences": ["public"]})  # fmt: skip
        assert r.status_code == 403
    assert count(engine, status_updates) == 0


async def test_private_and_internal_pages_need_their_credentials(site: str) -> None:
    async with httpx.AsyncClient(base_url=site) as c:
        r = await c.get("/status/default/staff")
        assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Basic")
        basic = base64.b64encode(f"reader:{PAGE_TOKEN}".encode()).decode()
        r = await c.get("/status/default/staff", headers={"Authorization": f"Basic {basic}"})
        assert r.status_code == 200 and "Acme staff" in r.text
        r = await c.get("/status/default/staff", headers={"Authorization": "Bearer wrong"})
        assert r.status_code == 401
        # the page's token opens the private page only
        r = await c.get("/status/default/noc", headers={"Authorization": f"Bearer {PAGE_TOKEN}"})
        assert r.status_code == 401
        r = await c.get("/status/default/noc",
                        headers={"Authorization": f"Bearer {TOKENS['viewer']}"})  # fmt: skip
        assert r.status_code == 200 and "Acme NOC" in r.text
        assert (await c.get("/status/default/nope")).status_code == 404
        css = await c.get("/status/_static/status.css")
        assert css.status_code == 200 and css.headers["Content-Type"].startswith("text/css")
        assert (await c.get("/status/globex/public")).status_code == 404


async def test_overrides_and_maintenance_show_on_the_page(site: str) -> None:
    async with client(site) as c:
        r = await c.put("/api/v1/status/components/search/override",
                        json={"state": "major_outage", "reason": "provider down"})  # fmt: skip
        assert r.status_code == 202, r.text
        start = datetime.now(UTC) + timedelta(days=2)
        r = await c.post("/api/v1/status/maintenance", json={
            "components": ["shop"], "starts_at": start.isoformat(),
            "ends_at": (start + timedelta(hours=1)).isoformat(), "title": "Database upgrade",
            "audiences": ["public"]})  # fmt: skip
        assert r.status_code == 202, r.text
        maintenance_id = r.json()["maintenance_id"]
        r = await c.put("/api/v1/status/components/nope/override", json={"state": "degraded"})
        assert r.status_code == 404

        async def shown() -> bool:
            doc = (await c.get("/status/default/public/index.json")).json()
            states = {x["id"]: x["state"] for x in doc["components"]}
            return states["search"] == "major_outage" and bool(doc["maintenance"])

        await until("the override and the maintenance", shown)
        html = (await c.get("/status/default/public")).text
        assert "Database upgrade" in html and "Scheduled" in html
        assert (await c.delete("/api/v1/status/components/search/override")).status_code == 202

        async def cleared() -> bool:
            doc = (await c.get("/status/default/public/index.json")).json()
            return {x["id"]: x["state"] for x in doc["components"]}["search"] == "operational"

        await until("the override cleared", cleared)
        r = await c.delete(f"/api/v1/status/maintenance/{maintenance_id}")
        assert r.status_code == 202, r.text
        assert (await c.delete("/api/v1/status/maintenance/nope")).status_code == 404

        async def called_off() -> bool:
            doc = (await c.get("/status/default/public/index.json")).json()
            return doc["maintenance"] == []

        await until("the maintenance called off", called_off)


class Receiver:
    """A subscriber's endpoint: fails its first request, then takes everything."""

    def __init__(self) -> None:
        self.seen: list[tuple[dict[str, str], bytes, int]] = []

    async def handle(self, request: web.Request) -> web.Response:
        status = 500 if not self.seen else 200
        self.seen.append((dict(request.headers), await request.read(), status))
        return web.Response(status=status)

    def delivered(self) -> list[str]:
        return [orjson.loads(b)["update_id"] for _, b, st in self.seen if st == 200]


async def test_a_webhook_subscriber_gets_each_update_once_signed_after_a_retry(site: str) -> None:
    rx = Receiver()
    app = web.Application()
    app.router.add_post("/hook", rx.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        async with client(site) as c:
            bad = await c.post("/api/v1/status/pages/public/subscribers",
                               json={"url": "http://example.com/hook"})  # fmt: skip
            assert bad.status_code == 400 and "https" in bad.json()["error"]
            r = await c.post("/api/v1/status/pages/public/subscribers",
                             json={"url": f"http://127.0.0.1:{port}/hook"})  # fmt: skip
            assert r.status_code == 201, r.text
            secret = r.json()["secret"]
            first = await _update(c, "investigating", "first", ["public"])
            await _update(c, "identified", "not for this page", ["private"])
            await until("the retried first update", lambda: _got(rx, [first]))
            second = await _update(c, "monitoring", "second", ["public"])
            await until("the second update", lambda: _got(rx, [first, second]))
        assert rx.delivered() == [first, second]
        assert [orjson.loads(b)["update_id"] for _, b, st in rx.seen if st != 200] == [first]
        for headers, body, _ in rx.seen:
            ts = headers["X-Tocsin-Timestamp"]
            mac = hmac.new(secret.encode(), ts.encode() + b"." + body, hashlib.sha256)
            assert headers["X-Tocsin-Signature"] == "sha256=" + mac.hexdigest()
            assert headers["X-Tocsin-Update-Id"] == orjson.loads(body)["update_id"]
        assert all(b"not for this page" not in b for _, b, _ in rx.seen)
    finally:
        await runner.cleanup()


async def _update(c: httpx.AsyncClient, status: str, message: str, audiences: list[str]) -> str:
    r = await c.post(
        "/api/v1/incidents/inc-open/updates",
        json={"status": status, "message": message, "audiences": audiences},
    )
    assert r.status_code == 202, r.text
    command_id: str = r.json()["command_id"]
    return command_id


async def _got(rx: Receiver, ids: list[str]) -> Any:
    return rx.delivered() == ids


async def test_the_console_posts_updates_and_opens_private_pages_to_its_sessions(
    site: str,
) -> None:
    async with httpx.AsyncClient(base_url=site, timeout=30) as c:
        assert (await c.get("/console/status/default/staff")).status_code == 401
        r = await c.post("/console/login", data={"token": TOKENS["responder"]})
        assert r.status_code == 303
        page = (await c.get("/console/status")).text
        assert "inc-open" in page and "inc-done" not in page, "open incidents only"
        csrf = re.search(r'name="csrf" value="([^"]+)"', page)
        assert csrf is not None
        r = await c.post("/console/status/updates", data={
            "csrf": csrf.group(1), "incident_id": "inc-open", "status": "monitoring",
            "message": "a fix is rolling out", "audiences": ["private"]})  # fmt: skip
        assert r.status_code == 303, r.text
        r = await c.post("/console/status/updates", data={
            "csrf": csrf.group(1), "incident_id": "inc-open", "status": "monitoring",
            "message": "x"})  # fmt: skip
        assert r.status_code == 400 and "audiences" in r.text
        r = await c.post("/console/status/updates", data={
            "csrf": "forged", "incident_id": "inc-open", "status": "monitoring",
            "message": "x", "audiences": ["public"]})  # fmt: skip
        assert r.status_code == 403

        async def shown() -> bool:
            html = (await c.get("/console/status/default/staff")).text
            return "a fix is rolling out" in html

        await until("the console's update on the private page", shown)
        public = (await c.get("/status/default/public")).text
        assert "a fix is rolling out" not in public

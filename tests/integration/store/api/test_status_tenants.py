"""Status pages of two tenants on one installation, over the real broker and projector
(SQLite and PostgreSQL): each page shows its tenant's incidents only; a tenant's token
posts updates about its own incidents only (another's answers 404, nothing written) and
reads its own private page only; the provider role posts in the tenant it names."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from aiohttp import web
from sqlalchemy import Engine

from harness.incidents import EXAMPLE_CONFIG
from schemas import Incident
from schemas.config import load_installation
from streams.api.app import Api
from streams.api.auth import digest
from streams.api.server import application
from streams.catalog import Catalog
from streams.settings import KafkaSettings
from streams.status.config import load_status_pages
from streams.store.projector import Projector
from streams.store.status_tables import status_updates
from tests.integration.store.api.conftest import free_port
from tests.integration.store.api.test_api import until
from tests.integration.store.api.test_status_api import publish
from tests.integration.store.support import count

TOKENS = {"provider": "tsn_status_provider", "acme": "tsn_status_acme",
          "beta": "tsn_status_beta"}  # fmt: skip
STATUS_YAML = """
components: [{id: shop, name: Shop, services: [shop]}]
pages:
  - {id: public, audience: public, title: %s status}
  - {id: staff, audience: private, title: %s staff}
"""
NOW = datetime.now(UTC)


def _root(tmp: Path) -> Path:
    root = tmp / "config"
    root.mkdir()
    (root / "tocsin.yaml").write_text((EXAMPLE_CONFIG / "tocsin.yaml").read_text())
    (root / "tokens.yaml").write_text(
        f"api_tokens: [{{user: alice, role: provider, sha256: {digest(TOKENS['provider'])}}}]\n"
    )
    for tenant, user in (("acme", "erin"), ("beta", "bob")):
        d = root / "tenants" / tenant
        d.mkdir(parents=True)
        (d / "tocsin.yaml").write_text(
            f"users: [{{id: {user}, name: {user.title()}}}]\n"
            f"teams: [{{id: web, members: [{user}]}}]\n"
            "services: [{id: shop, team: web}]\n"
            f"api_tokens: [{{user: {user}, role: responder, sha256: {digest(TOKENS[tenant])}}}]\n"
        )  # fmt: skip
        (d / "status.yaml").write_text(STATUS_YAML % (tenant.title(), tenant.title()))
    return root


def _incident(tenant: str, priority: str) -> Incident:
    iid = f"inc-{tenant}-1"
    return Incident(incident_id=iid, group_key=f"{tenant}/{iid}", version=1, status="triggered",
                    title="t", severity="critical", priority=priority, service="shop",
                    opened_at=NOW - timedelta(minutes=10), tenant=tenant)  # type: ignore[arg-type]  # fmt: skip


@pytest.fixture
async def site(kafka_settings: KafkaSettings, topics: Catalog, engine: Engine,
               running_projector: Projector, tmp_path: Path) -> AsyncIterator[str]:  # fmt: skip
    root = _root(tmp_path)
    tenants = load_installation([root]).tenants
    pages = load_status_pages([root], tenants)
    publish(kafka_settings, _incident("acme", "P1"), _incident("beta", "P3"))
    api = Api(kafka_settings, engine, tenants["default"], tenants=tenants)
    runner = web.AppRunner(application(api, pages))
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def _client(url: str, who: str | None = None) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {TOKENS[who]}"} if who else {}
    return httpx.AsyncClient(base_url=url, headers=headers, timeout=30)


async def _shop(c: httpx.AsyncClient, tenant: str) -> str:
    doc = (await c.get(f"/status/{tenant}/public/index.json")).json()
    return str(doc["components"][0]["state"])


async def test_each_tenants_pages_and_updates_stay_its_own(site: str, engine: Engine) -> None:
    async with _client(site) as anyone:
        await until("both incidents", lambda: _both(anyone))
        assert await _shop(anyone, "acme") == "major_outage"
        assert await _shop(anyone, "beta") == "degraded"
    body = {"status": "identified", "message": "words of acme", "audiences": ["public"]}
    async with _client(site, "acme") as acme:
        r = await acme.post("/api/v1/incidents/inc-beta-1/updates", json=body)
        assert r.status_code == 404, "another tenant's incident is no incident"
        r = await acme.post("/api/v1/tenants/beta/incidents/inc-beta-1/updates", json=body)
        assert r.status_code == 404, "only the provider names a tenant"
        assert count(engine, status_updates) == 0
        assert (await acme.post("/api/v1/incidents/inc-acme-1/updates", json=body)).status_code \
            == 202  # fmt: skip
        assert (await acme.get("/status/acme/staff")).status_code == 200
        assert (await acme.get("/status/beta/staff")).status_code == 404
    async with _client(site, "provider") as provider:
        r = await provider.post("/api/v1/tenants/beta/incidents/inc-beta-1/updates",
                                json={**body, "message": "words of the provider"})  # fmt: skip
        assert r.status_code == 202, r.text
    async with _client(site) as anyone:

        async def told() -> bool:
            a = (await anyone.get("/status/acme/public")).text
            b = (await anyone.get("/status/beta/public")).text
            return "words of acme" in a and "words of the provider" in b

        await until("each update on its tenant's page", told)
        a = (await anyone.get("/status/acme/public")).text
        b = (await anyone.get("/status/beta/public")).text
        assert "words of the provider" not in a and "words of acme" not in b


async def _both(c: httpx.AsyncClient) -> bool:
    return await _shop(c, "acme") != "operational" and await _shop(c, "beta") != "operational"

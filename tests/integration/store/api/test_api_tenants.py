"""Tenants in the REST API, on SQLite and PostgreSQL, over a store the real projector
filled from the real broker: a tenant's token sees and acts on its own incidents only
(another tenant's id answers 404 on every incident route, and nothing is written); the
provider role acts in any tenant it names; SLA reports per tenant and month, as JSON
and as CSV."""

from __future__ import annotations

import asyncio
import csv
import io
import os
import re
import sys
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine

from harness.incidents import EXAMPLE_CONFIG, history, produce
from processors.incidents.ledger import Effect
from schemas import Command, Incident, decode
from schemas.config import Config, load_installation
from streams.api.app import Api
from streams.api.auth import digest
from streams.catalog import Catalog
from streams.kafka import read_topic
from streams.settings import KafkaSettings
from streams.store import tables
from streams.store.projector import Projector
from tests.integration.store.api.conftest import Served, serve
from tests.integration.store.api.test_api import until
from tests.integration.store.support import count

# the histories cross a month boundary: the SLA report has two months per tenant
T0 = datetime(2026, 2, 28, 23, 45, tzinfo=UTC)
N = 30
TOKENS = {"provider": "tsn_provider_token", "acme": "tsn_acme_token", "beta": "tsn_beta_token",
          "default": "tsn_own_admin_token"}  # fmt: skip
ACTIONS = {"ack": {}, "resolve": {}, "escalate": {}, "reassign": {"assignee": "erin"},
           "note": {"text": "hello"}, "snooze": {"duration": "PT30M"},
           "priority": {"priority": "P2"}}  # fmt: skip


def installation(tmp: Path) -> dict[str, Config]:
    root = tmp / "config"
    (root / "tenants" / "acme").mkdir(parents=True)
    (root / "tenants" / "beta").mkdir(parents=True)
    (root / "tocsin.yaml").write_text((EXAMPLE_CONFIG / "tocsin.yaml").read_text())
    (root / "tokens.yaml").write_text(
        "api_tokens:\n"
        f"  - {{user: alice, role: provider, sha256: {digest(TOKENS['provider'])}}}\n"
        f"  - {{user: alice, role: admin, sha256: {digest(TOKENS['default'])}}}\n")  # fmt: skip
    for tenant, user, minutes in (("acme", "erin", 5), ("beta", "bob", 20)):
        (root / "tenants" / tenant / "tocsin.yaml").write_text(
            f"users: [{{id: {user}, name: {user.title()}}}]\n"
            f"teams: [{{id: web, members: [{user}]}}]\n"
            f"ack_sla: {{P1: {minutes}m, P2: {minutes}m, P3: 1h, P4: 4h, P5: 24h}}\n"
            f"api_tokens: [{{user: {user}, role: admin, sha256: {digest(TOKENS[tenant])}}}]\n"
        )
    return dict(load_installation([root]).tenants)


def tenant_history(tenant: str, start: datetime, seed: int) -> list[Effect]:
    """The harness's history as the agents would write it for ``tenant``: its group keys
    (and so its incident ids) are the tenant's own."""
    out = []
    for e in history(N, start, seed=seed):
        text = e.model_dump_json().replace('"inc-', f'"inc-{tenant}-')
        out.append(type(e).model_validate_json(text).model_copy(update={"tenant": tenant}))
    return out


@pytest.fixture
async def two_tenants(kafka_settings: KafkaSettings, topics: Catalog, engine: Engine,
                      running_projector: Projector, tmp_path: Path
                      ) -> AsyncIterator[tuple[Served, list[Effect]]]:  # fmt: skip
    effects = tenant_history("acme", T0, 7) + tenant_history("beta", T0 + timedelta(hours=1), 8)
    produce(kafka_settings, effects)
    await until("both tenants' incidents", lambda: _count(engine, 2 * N))
    configs = installation(tmp_path)
    api = Api(kafka_settings, engine, configs["default"], tenants=configs)
    async with serve(api) as served:
        yield served, effects


async def _count(engine: Engine, n: int) -> bool:
    return count(engine, tables.incidents) == n


def client(served: Served, who: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=served.url, timeout=30,
                             headers={"Authorization": f"Bearer {TOKENS[who]}"})  # fmt: skip


def finals(effects: list[Effect]) -> dict[str, Incident]:
    out: dict[str, Incident] = {}
    for e in effects:
        if isinstance(e, Incident):
            out[e.incident_id] = e
    return out


async def test_a_tenants_token_sees_and_acts_on_its_own_incidents_only(
    two_tenants: tuple[Served, list[Effect]], kafka_settings: KafkaSettings, topics: Catalog
) -> None:
    served, effects = two_tenants
    incs = finals(effects)
    acme_ids = {i for i, inc in incs.items() if inc.tenant == "acme"}
    beta_ids = {i for i, inc in incs.items() if inc.tenant == "beta"}
    assert len(acme_ids) == len(beta_ids) == N and not acme_ids & beta_ids
    beta_open = sorted(i for i in beta_ids if incs[i].status != "resolved")[0]
    async with client(served, "acme") as c:
        listed = (await c.get("/api/v1/incidents", params={"limit": 200})).json()["items"]
        assert {i["incident_id"] for i in listed} == acme_ids
        for path in (f"/api/v1/incidents/{beta_open}", f"/api/v1/incidents/{beta_open}/postmortem"):
            r = await c.get(path)
            assert r.status_code == 404 and beta_open in r.json()["error"], path
        for action, body in ACTIONS.items():
            r = await c.post(f"/api/v1/incidents/{beta_open}/{action}", json=body)
            assert r.status_code == 404, (action, r.text)
        # naming another tenant, or any tenant, is the provider's alone
        for path in ("/api/v1/tenants/beta/incidents", "/api/v1/incidents?tenant=beta"):
            r = await c.get(path)
            assert r.status_code == 404 and r.json()["field"] == "tenant", path
        assert (await c.get("/api/v1/reports/sla", params={"tenants": "all"})).status_code == 403
    assert read_topic(kafka_settings, topics.name("commands")) == [], "nothing was written"


async def test_the_provider_role_acts_in_the_tenant_it_names(
    two_tenants: tuple[Served, list[Effect]], kafka_settings: KafkaSettings, topics: Catalog
) -> None:
    served, effects = two_tenants
    incs = finals(effects)
    beta_open = sorted(i for i, inc in incs.items()
                       if inc.tenant == "beta" and inc.status != "resolved")[0]  # fmt: skip
    async with client(served, "provider") as c:
        own = (await c.get("/api/v1/incidents")).json()["items"]
        assert own == [], "without naming one, the provider acts in its own tenant"
        by_path = (await c.get("/api/v1/tenants/beta/incidents", params={"limit": 200})).json()
        by_query = (await c.get("/api/v1/incidents", params={"tenant": "acme", "limit": 200})
                    ).json()  # fmt: skip
        assert {i["incident_id"] for i in by_path["items"]} == {
            i for i, inc in incs.items() if inc.tenant == "beta"}  # fmt: skip
        assert {incs[i["incident_id"]].tenant for i in by_query["items"]} == {"acme"}
        one = await c.get(f"/api/v1/tenants/beta/incidents/{beta_open}")
        assert one.status_code == 200 and one.json()["incident_id"] == beta_open
        assert (await c.get(f"/api/v1/tenants/acme/incidents/{beta_open}")).status_code == 404
        noted = await c.post(f"/api/v1/tenants/beta/incidents/{beta_open}/note",
                             json={"text": "provider on it"})  # fmt: skip
        assert noted.status_code == 202, noted.text
        r = await c.get("/api/v1/tenants/gamma/incidents")
        assert r.status_code == 404 and "gamma" in r.json()["error"]
    async with client(served, "default") as c:
        assert (await c.get("/api/v1/tenants/beta/incidents")).status_code == 404, (
            "an admin of the provider's own tenant is not the provider role")  # fmt: skip
    commands = [decode(Command, v) for v in read_topic(kafka_settings, topics.name("commands"))]
    assert [(c.action, c.incident_id, c.tenant, c.actor) for c in commands] == [
        ("note", beta_open, "beta", "alice")]  # fmt: skip


def expected_months(effects: list[Effect], sla: dict[str, dict[str, timedelta]],
                    end: datetime) -> dict[tuple[str, str], tuple[int, int]]:  # fmt: skip
    """(tenant, month) -> (incidents, ack-SLA breaches), from the snapshots themselves."""
    out: Counter[tuple[str, str]] = Counter()
    late: Counter[tuple[str, str]] = Counter()
    for inc in finals(effects).values():
        key = (inc.tenant, f"{inc.opened_at:%Y-%m}")
        out[key] += 1
        answered = inc.acknowledged_at or inc.resolved_at or end
        if answered - inc.opened_at > sla[inc.tenant][inc.priority]:
            late[key] += 1
    return {k: (n, late[k]) for k, n in out.items()}


async def test_sla_per_tenant_and_month_as_json_and_csv(
    two_tenants: tuple[Served, list[Effect]], tmp_path: Path
) -> None:
    served, effects = two_tenants
    slas = {t: dict(c.ack_sla) for t, c in installation(tmp_path / "again").items()}
    want = expected_months(effects, slas, datetime(2026, 4, 1, tzinfo=UTC))
    assert {m for _, m in want} == {"2026-02", "2026-03"}
    assert any(late for _, late in want.values()), "the histories must breach somewhere"
    months = {"from": "2026-01", "to": "2026-03"}
    async with client(served, "acme") as c:
        doc = (await c.get("/api/v1/reports/sla", params=months)).json()
        got = {(r["tenant"], r["month"]): (r["incidents"], r["ack_sla_breaches"])
               for r in doc["months"]}  # fmt: skip
        assert got == {k: v for k, v in want.items() if k[0] == "acme"}
        assert doc["ack_sla_s"] == {"acme": {"P1": 300.0, "P2": 300.0, "P3": 3600.0,
                                             "P4": 14400.0, "P5": 86400.0}}  # fmt: skip
        assert all(r["mtta_s"] > 0 and r["mttr_s"] > r["mtta_s"] for r in doc["months"])
        text = await c.get("/api/v1/reports/sla", params=months, headers={"Accept": "text/csv"})
        assert text.headers["Content-Type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(text.text)))
        assert [(r["tenant"], r["month"], int(r["incidents"]), int(r["ack_sla_breaches"]))
                for r in rows] == [(t, m, *want[t, m]) for t, m in sorted(want)
                                   if t == "acme"]  # fmt: skip
        grouped = await c.get("/api/v1/reports", params={"since": "2026-02-01T00:00:00Z",
                                                         "until": "2026-04-01T00:00:00Z",
                                                         "format": "csv"})  # fmt: skip
        total = list(csv.DictReader(io.StringIO(grouped.text)))[-1]
        assert total["key"] == "total" and int(total["incidents"]) == N
        bad = await c.get("/api/v1/reports/sla", params={"from": "2026-13"})
        assert bad.status_code == 400 and bad.json()["field"] == "from"
    async with client(served, "provider") as c:
        every = (await c.get("/api/v1/reports/sla", params={**months, "tenants": "all",
                                                            "format": "csv"})).text  # fmt: skip
    rows = list(csv.DictReader(io.StringIO(every)))
    assert {(r["tenant"], r["month"]): (int(r["incidents"]), int(r["ack_sla_breaches"]))
            for r in rows} == want, "each tenant against its own SLA"  # fmt: skip
    code, out = await _cli(served, "report", "--by", "month", "--from", "2026-02", "--to",
                           "2026-03", "--all-tenants", "--csv")  # fmt: skip
    assert code == 0, out
    assert out.replace("\r\n", "\n") == every.replace("\r\n", "\n")


async def _cli(served: Served, *args: str) -> tuple[int, str]:
    env = {**os.environ, "TOCSIN_API_URL": served.url, "TOCSIN_API_TOKEN": TOKENS["provider"]}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "streams.cli.main", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode()


async def _console(served: Served, who: str) -> tuple[httpx.AsyncClient, str]:
    c = httpx.AsyncClient(base_url=served.url, timeout=30)
    r = await c.post("/console/login", data={"token": TOKENS[who]})
    assert r.status_code == 303, r.text
    page = (await c.get("/console/")).text
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None
    return c, found.group(1)


async def test_the_console_shows_the_tenant_and_provider_staff_switch(
    two_tenants: tuple[Served, list[Effect]],
) -> None:
    served, effects = two_tenants
    incs = finals(effects)
    c, csrf = await _console(served, "provider")
    try:
        page = (await c.get("/console/")).text
        assert 'tenant <strong class="tenant">default</strong>' in page
        assert '<option value="beta"' in page and not any(i in page for i in incs)
        r = await c.post("/console/tenant", data={"csrf": csrf, "tenant": "beta"})
        assert r.status_code == 303
        page = (await c.get("/console/")).text
        assert 'tenant <strong class="tenant">beta</strong>' in page
        shown = {i for i in incs if i in page}
        assert shown and {incs[i].tenant for i in shown} == {"beta"}
        beta_one = sorted(shown)[0]
        assert (await c.get(f"/console/incidents/{beta_one}")).status_code == 200
        r = await c.post("/console/tenant", data={"csrf": csrf, "tenant": "gamma"})
        assert r.status_code == 404
    finally:
        await c.aclose()
    c, csrf = await _console(served, "acme")
    try:
        page = (await c.get("/console/")).text
        assert 'tenant <strong class="tenant">acme</strong>' in page
        assert "tenant-switch" not in page
        assert (await c.post("/console/tenant", data={"csrf": csrf, "tenant": "beta"})
                ).status_code == 403  # fmt: skip
        c.cookies.set("tocsin_console_tenant", "beta", path="/console")
        page = (await c.get("/console/")).text
        assert 'tenant <strong class="tenant">acme</strong>' in page, "the cookie is not a key"
        assert (await c.get(f"/console/incidents/{beta_one}")).status_code == 404
    finally:
        await c.aclose()

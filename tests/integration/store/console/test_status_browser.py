"""A public status page in a real browser (Debian's Chromium, JavaScript off) against the
real broker, agents, projector and API worker (`tocsin run api` with a status.yaml), on
SQLite and PostgreSQL: the component is degraded while an incident is open and
operational once it is resolved, the page tells the public update, and never a word of
the private one or of the incident's own details."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from harness.incidents import EXAMPLE_CONFIG
from harness.workers import kill9, start_agents
from schemas import Alert, encode
from streams.catalog import Catalog
from streams.kafka import make_producer
from streams.settings import KafkaSettings
from streams.store.db import StoreSettings
from tests.integration.store.api.conftest import TOKENS, config_dir, free_port
from tests.integration.store.api.test_api import until
from tests.integration.store.conftest import store_env
from tests.integration.store.console.test_console_browser import _env, _up, _worker

STATUS_YAML = """
components:
  - {id: catalog, name: Product catalogue, group: Shop, services: [catalog]}
  - {id: search, name: Search, group: Shop, services: [search]}
pages:
  - {id: public, audience: public, title: Acme status}
"""
PUBLIC = "Product pages load slowly; we are looking into it."
PRIVATE = "cat-7 heap exhausted, restarting the JVM on the replica."


async def test_a_public_page_follows_an_incident_and_hides_private_updates(
    kafka_settings: KafkaSettings, topics: Catalog, running_projector: Any,
    store: StoreSettings, browser: Any, tmp_path: Path,
) -> None:  # fmt: skip
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    paths = config_dir(tmp_path)
    (tmp_path / "status.yaml").write_text(STATUS_YAML)  # next to tokens.yaml
    configs = [a for p in paths for a in ("--config", str(p))]
    logs = {n: tmp_path / f"{n}.log" for n in ("agents", "api")}
    procs = [
        start_agents(kafka_settings, EXAMPLE_CONFIG / "tocsin.yaml", logs["agents"]),
        _worker(["api", *configs, "--host", "127.0.0.1", "--port", str(port)],
                _env(kafka_settings, **store_env(store)), logs["api"]),
    ]  # fmt: skip
    try:
        await _up(url, procs[1], logs["api"])
        alert = Alert(fingerprint="fp-cat", status="firing", rule="latency_high",
                      severity="critical",
                      labels={"alertname": "latency_high", "service": "catalog", "host": "cat-7"},
                      summary="p99 latency 987.654 ms on cat-7", value=987.654, threshold=1.0,
                      starts_at=datetime.now(UTC))  # fmt: skip
        producer = make_producer(kafka_settings)
        producer.produce(topics.name("alerts"), key=b"fp-cat", value=encode(alert))
        assert producer.flush(10) == 0
        auth = {"Authorization": f"Bearer {TOKENS['responder']}"}
        async with httpx.AsyncClient(base_url=url, headers=auth, timeout=30) as api:

            async def opened() -> str:
                items = (await api.get("/api/v1/incidents?service=catalog")).json()["items"]
                return str(items[0]["incident_id"]) if items else ""

            iid = await until("the incident in the store", opened, 120)
            for message, audiences in ((PUBLIC, ["public"]), (PRIVATE, ["private", "internal"])):
                r = await api.post(
                    f"/api/v1/incidents/{iid}/updates",
                    json={"status": "investigating", "message": message, "audiences": audiences},
                )
                assert r.status_code == 202, r.text

            # no JavaScript: everything a reader needs is in the markup
            ctx = await browser.new_context(java_script_enabled=False)
            page = await ctx.new_page()
            catalog = page.locator("#component-catalog")

            async def shows(state: str, text: str) -> bool:
                await page.goto(f"{url}/status/default/public")
                if await catalog.count() == 0:  # (a 503 while the store is busy: try again)
                    return False
                return (await catalog.get_attribute("data-state") == state
                        and text in await page.locator("main").inner_text())  # fmt: skip

            await until("the degraded component and the public update",
                        lambda: shows("degraded", PUBLIC), 120)  # fmt: skip
            assert await catalog.locator(".state").inner_text() == "Degraded performance"
            assert await page.locator("#component-search").get_attribute("data-state") == \
                "operational"  # fmt: skip
            assert await catalog.locator(".bars li").count() == 90
            _never_private(await page.content())

            r = await api.post(f"/api/v1/incidents/{iid}/resolve", json={})
            assert r.status_code == 202, r.text
            await until("the component operational again",
                        lambda: shows("operational", PUBLIC), 120)  # fmt: skip
            assert await page.locator("#overall").inner_text() == "All systems operational"
            # the story moved to the past incidents, with its public update
            assert PUBLIC in await page.locator("section[aria-labelledby=past-h]").inner_text()
            assert await page.locator("section[aria-labelledby=active-h]").count() == 0
            _never_private(await page.content())
            await ctx.close()
    finally:
        for p in procs:
            kill9(p)


def _never_private(html: str) -> None:
    for secret in (PRIVATE, "cat-7", "heap", "latency_high", "987.654"):
        assert secret not in html, f"{secret!r} on the public page"

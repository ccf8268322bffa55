"""End to end through the real agents: an alert opens an incident that the API lists; an
acknowledgement, a priority and an override sent through the API are applied by the
agents and show in the store; a silence created through the API mutes the next alert
at once (no restart); the API answers 503 while its PostgreSQL is away."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from harness.incidents import EXAMPLE_CONFIG
from harness.postgres import LocalPostgres, binaries
from harness.workers import kill9, start_agents
from schemas import Alert, encode
from schemas.config import load_config
from streams.api.app import Api
from streams.catalog import Catalog
from streams.kafka import make_producer
from streams.settings import KafkaSettings
from streams.store.db import StoreSettings, migrate, open_engine
from tests.integration.store.api.conftest import PG_PORT_OUTAGE, Served, config_dir, serve
from tests.integration.store.api.test_api import until


def _alert(fp: str, host: str) -> Alert:
    now = datetime.now(UTC)
    return Alert(fingerprint=fp, status="firing", rule="disk_full", severity="critical",
                 labels={"alertname": "disk_full", "service": "db", "host": host},
                 summary=f"disk full on {host}", value=99.0, threshold=95.0,
                 starts_at=now)  # fmt: skip


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
async def test_actions_through_the_api_are_applied_by_the_agents(
    kafka_settings: KafkaSettings, topics: Catalog, running_projector: Any, served: Served,
    engine: Engine, tmp_path: Path,
) -> None:  # fmt: skip
    log = tmp_path / "agents.log"
    agents = start_agents(kafka_settings, EXAMPLE_CONFIG / "tocsin.yaml", log)
    producer = make_producer(kafka_settings)
    try:
        producer.produce(topics.name("alerts"), key=b"fp-a", value=encode(_alert("fp-a", "db-1")))
        assert producer.flush(10) == 0
        async with served.client("responder") as c:

            async def listed() -> Any:
                items = (await c.get("/api/v1/incidents")).json()["items"]
                return items[0] if items else None

            inc = await until("the incident", listed, 120)
            iid = inc["incident_id"]
            assert inc["status"] == "triggered" and inc["service"] == "db"
            sent = time.monotonic()
            r = await c.post(f"/api/v1/incidents/{iid}/ack")
            assert r.status_code == 202

            async def acked() -> Any:
                doc = (await c.get(f"/api/v1/incidents/{iid}")).json()
                return doc if doc["status"] == "acknowledged" else None

            doc = await until("the acknowledgement", acked, 60)
            took = time.monotonic() - sent
            ack = [e for e in doc["timeline"] if e["kind"] == "acknowledged"]
            assert ack and ack[0]["actor"] == "carol", "acknowledged as the token's user"
            assert (await c.post(f"/api/v1/incidents/{iid}/priority",
                                 json={"priority": "P4"})).status_code == 202  # fmt: skip

            async def reprioritised() -> bool:
                return bool((await c.get(f"/api/v1/incidents/{iid}")).json()["priority"] == "P4")

            await until("the new priority", reprioritised, 60)

            # a write retried under its Idempotency-Key (its answer lost, a 503 while
            # Kafka was away) is the same command: the agents apply it once
            keyed = {"Idempotency-Key": "note-1"}
            first = await c.post(f"/api/v1/incidents/{iid}/note", json={"text": "keyed"},
                                 headers=keyed)  # fmt: skip
            again = await c.post(f"/api/v1/incidents/{iid}/note", json={"text": "keyed"},
                                 headers=keyed)  # fmt: skip
            assert first.status_code == again.status_code == 202
            assert first.json()["command_id"] == again.json()["command_id"]
            r = await c.post(f"/api/v1/incidents/{iid}/note", json={"text": "after"})
            assert r.status_code == 202
            bad = await c.post(f"/api/v1/incidents/{iid}/note", json={"text": "x"},
                               headers={"Idempotency-Key": "has spaces"})  # fmt: skip
            assert bad.status_code == 400 and bad.json()["field"] == "Idempotency-Key"

            async def notes() -> list[str]:
                doc = (await c.get(f"/api/v1/incidents/{iid}")).json()
                found = [e["message"] for e in doc["timeline"] if e["kind"] == "note"]
                return found if "after" in found else []

            # commands of one incident are applied in order: the later note ends the wait
            assert (await until("the notes", notes, 60)).count("keyed") == 1

            # a silence applies from the moment it is created: the next matching alert
            # opens nothing, while one it does not match opens an incident
            r = await c.post(
                "/api/v1/silences",
                json={"matchers": [{"label": "host", "value": "db-2"}], "duration": "PT1H"},
            )
            assert r.status_code == 202
            sid = r.json()["silence_id"]

            async def silenced() -> bool:
                return any(s["silence_id"] == sid for s in
                           (await c.get("/api/v1/silences")).json()["items"])  # fmt: skip

            await until("the silence in the store", silenced)
            for fp, host in (("fp-b", "db-2"), ("fp-c", "db-3")):
                producer.produce(topics.name("alerts"), key=fp.encode(),
                                 value=encode(_alert(fp, host)))  # fmt: skip
            assert producer.flush(10) == 0

            async def hosts() -> set[str]:
                items = (await c.get("/api/v1/incidents")).json()["items"]
                return {i["labels"]["host"] for i in items}

            await until("the unsilenced alert's incident", lambda: _has(hosts, "db-3"), 60)
            assert "db-2" not in await hosts()
    finally:
        kill9(agents)
    print(f"\ncommand accepted by the API -> row shows it: {took * 1000:.0f} ms")


async def _has(probe: Any, host: str) -> bool:
    return host in await probe()


async def test_the_api_answers_503_while_its_database_is_away(
    kafka_settings: KafkaSettings, topics: Catalog, tmp_path: Path
) -> None:
    if binaries() is None:
        pytest.skip("PostgreSQL is not installed: `make peers` installs `postgresql`")
    pg = LocalPostgres(PG_PORT_OUTAGE).start()
    engine = open_engine(StoreSettings(dsn=pg.dsn, timeout_s=2))  # type: ignore[arg-type]
    try:
        migrate(engine)
        api = Api(kafka_settings, engine, load_config(config_dir(tmp_path)))
        async with serve(api) as served, served.client() as c:
            assert (await c.get("/api/v1/incidents")).status_code == 200
            pg.stop_server()
            r = await c.get("/api/v1/incidents")
            assert r.status_code == 503 and r.headers["Retry-After"] == "5"
            assert "store" in r.json()["error"]
            assert (await c.get("/readyz")).status_code == 503
            pg.resume()
            deadline = datetime.now(UTC) + timedelta(seconds=60)
            while (await c.get("/api/v1/incidents")).status_code != 200:
                assert datetime.now(UTC) < deadline, "the API never came back"
    finally:
        engine.dispose()
        pg.stop()

"""Two tenants on one agents worker and the real broker: identical alerts make two
incidents, each paged to its own tenant's people; one tenant's silence mutes nothing of
the other's; a command of one tenant never acts on the other's incident."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

from harness.workers import kill9, start_agents
from schemas import Alert, Command, DeadLetter, Incident, IncidentEvent, decode, encode
from schemas.commands import Matcher, SilenceSpec
from streams.catalog import Catalog
from streams.kafka import make_producer
from streams.settings import KafkaSettings
from tests.integration.agents.test_agents_worker import _notifications, _wait, read_topic

EXAMPLE = Path("examples/config")


def _installation(tmp_path: Path) -> Path:
    """The example installation with someone on call in each tenant for the test's hour."""
    root = tmp_path / "config"
    shutil.copytree(EXAMPLE, root)
    now = datetime.now(UTC)
    span = f"start: {(now - timedelta(hours=1)).isoformat()}, " \
           f"end: {(now + timedelta(hours=1)).isoformat()}"  # fmt: skip
    provider = root / "tocsin.yaml"
    provider.write_text(provider.read_text().replace(
        "overrides: []", f"overrides: [{{user: alice, {span}}}]", 1))  # fmt: skip
    acme = root / "tenants" / "acme" / "tocsin.yaml"
    acme.write_text(acme.read_text().replace(
        "      - {users: [erin, frank], length: 7d, handoff: \"09:00\", start: 2026-01-05}\n",
        "      - {users: [erin, frank], length: 7d, handoff: \"09:00\", start: 2026-01-05}\n"
        f"    overrides: [{{user: erin, {span}}}]\n"))  # fmt: skip
    return root


def _alert(tenant: str, host: str) -> Alert:
    return Alert(tenant=tenant, fingerprint=f"cpu-{host}", status="firing",
                 rule="cpu_saturation_critical", severity="critical",
                 labels={"alertname": "cpu_saturation_critical", "service": "shop",
                         "host": host},
                 summary=f"CPU 95% on {host}", value=95.0, starts_at=datetime.now(UTC))  # fmt: skip


def _incidents(settings: KafkaSettings, topics: Catalog) -> list[Incident]:
    committed = read_topic(settings, topics.name("incidents"))
    return [decode(Incident, v) for vs in committed.values() for v in vs]


def _ledger(settings: KafkaSettings, topics: Catalog) -> list[IncidentEvent]:
    committed = read_topic(settings, topics.name("incident-events"))
    return [decode(IncidentEvent, v) for vs in committed.values() for v in vs]


def _letters(settings: KafkaSettings, topics: Catalog) -> list[DeadLetter]:
    committed = read_topic(settings, topics.name("deadletter"))
    return [decode(DeadLetter, v) for vs in committed.values() for v in vs]


def test_two_tenants_share_nothing_but_the_topics(
    kafka_settings: KafkaSettings, topics: Catalog, tmp_path: Path
) -> None:
    log = tmp_path / "agents.log"
    worker = start_agents(kafka_settings, _installation(tmp_path), log)
    producer = make_producer(kafka_settings)

    def send(topic: str, key: str, value: bytes) -> None:
        producer.produce(topics.name(topic), key=key.encode(), value=value)
        assert producer.flush(10) == 0

    def pages(tenant: str, host: str) -> set[str]:
        return {n.target for n in _notifications(kafka_settings, topics)
                if n.tenant == tenant and n.labels.get("host") == host}  # fmt: skip

    try:
        # identical labels from two tenants: two incidents, each paged to its own people
        send("alerts", "cpu-web-03", encode(_alert("default", "web-03")))
        send("alerts", "cpu-web-03", encode(_alert("acme", "web-03")))
        _wait(lambda: {"U0ALICE", "U0ERIN"} <= pages("default", "web-03") | pages("acme", "web-03"),
              90, "both tenants' first pages", log, worker)  # fmt: skip
        acme_pages, provider_pages = pages("acme", "web-03"), pages("default", "web-03")
        assert "#acme-web-alerts" in acme_pages and "#platform-alerts" in provider_pages
        assert not acme_pages & provider_pages
        opened = {i.tenant: i for i in _incidents(kafka_settings, topics)}
        assert set(opened) == {"default", "acme"}
        assert opened["acme"].incident_id != opened["default"].incident_id
        assert opened["acme"].group_key.startswith("acme/")
        theirs = opened["acme"].incident_id

        # acme silences web-09; the provider's identical alert still pages
        silence = Command(tenant="acme", action="silence", actor="erin", at=datetime.now(UTC),
                          silence=SilenceSpec(matchers=[Matcher(label="host", value="web-09")],
                                              starts_at=datetime.now(UTC) - timedelta(minutes=1),
                                              ends_at=datetime.now(UTC) + timedelta(hours=1),
                                              author="erin"))  # fmt: skip
        send("commands", "silence", encode(silence))

        def broadcast() -> bool:
            records = read_topic(kafka_settings, topics.name("suppressions")).values()
            return any(b"web-09" in v for vs in records for v in vs)

        _wait(broadcast, 30, "the silence broadcast", log, worker)
        send("alerts", "cpu-web-09", encode(_alert("acme", "web-09")))
        send("alerts", "cpu-web-09", encode(_alert("default", "web-09")))
        _wait(lambda: "U0ALICE" in pages("default", "web-09"), 60, "the provider's page",
              log, worker)  # fmt: skip
        muted = [line for line in log.read_text().splitlines()
                 if "alert_suppressed" in line and "cpu-web-09" in line]  # fmt: skip
        assert len(muted) == 1 and "erin" in muted[0]  # acme's alert came, and was muted

        # the provider's token tries to acknowledge acme's incident: refused
        foreign = Command(tenant="default", action="ack", actor="alice", incident_id=theirs,
                          at=datetime.now(UTC))  # fmt: skip
        send("commands", theirs, encode(foreign))
        _wait(lambda: any(d.reason == "tenant" and theirs in d.error
                          for d in _letters(kafka_settings, topics)), 60,
              "the refused command's dead letter", log, worker)  # fmt: skip
        stranger = _alert("initech", "web-03")
        send("alerts", "cpu-web-03", encode(stranger))
        _wait(lambda: any("unknown tenant 'initech'" in d.error
                          for d in _letters(kafka_settings, topics)), 60,
              "the unknown tenant's dead letter", log, worker)  # fmt: skip
        # acme's own ack works (the refusal above was about the tenant, not the command)
        own = Command(tenant="acme", action="ack", actor="erin", incident_id=theirs,
                      at=datetime.now(UTC))  # fmt: skip
        send("commands", theirs, encode(own))
        _wait(lambda: any(e.incident_id == theirs and e.kind == "acknowledged"
                          for e in _ledger(kafka_settings, topics)), 60, "acme's own ack",
              log, worker)  # fmt: skip
    finally:
        kill9(worker)

    ledger = _ledger(kafka_settings, topics)
    acks = [e for e in ledger if e.kind == "acknowledged" and e.incident_id == theirs]
    assert [e.actor for e in acks] == ["erin"], "alice's ack of acme's incident was applied"
    assert not pages("acme", "web-09"), "acme's silence did not hold"
    assert not [i for i in _incidents(kafka_settings, topics)
                if i.tenant == "acme" and i.labels.get("host") == "web-09"]  # fmt: skip
    assert not [i for i in _incidents(kafka_settings, topics) if i.tenant == "initech"]
    owner = {i.incident_id: i.tenant for i in _incidents(kafka_settings, topics)}
    assert owner[theirs] == "acme"
    for e in ledger:  # every ledger entry carries its incident's tenant
        assert e.tenant == owner[e.incident_id]
    assert {e.tenant for e in ledger} == {"default", "acme"}

"""SIGTERM (or kill -9) an agents worker while it decides a burst in batches, start
another: every transition is applied once, none lost, no incident opened twice."""

from __future__ import annotations

import os
import signal
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from harness.workers import health_port, start_notifier, wait_for_lag_zero
from schemas import Alert, DeliveryReceipt, Incident, decode, encode
from streams.catalog import Catalog
from streams.demo.fake_slack import FakeSlack, serve
from streams.kafka import make_producer, read_topic_keyed
from streams.settings import KafkaSettings
from tests.integration.agents.test_agents_worker import (
    _notifications,
    _wait,
    read_topic,
    start_agents,
)
from tests.integration.connectors.support import read_values
from tests.processor_support import kill9


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
            return bool(r.status == 200)
    except OSError:  # not ready (503) or not serving yet
        return False


ROUNDS = 12  # 50 services x 20 hosts x 12 rounds, all firing: 1 open + 11 repeats each


def _latest(settings: KafkaSettings, topics: Catalog) -> dict[str, Incident]:
    out: dict[str, Incident] = {}
    for vs in read_topic(settings, topics.name("incidents")).values():
        for v in vs:
            inc = decode(Incident, v)
            if inc.incident_id not in out or inc.version > out[inc.incident_id].version:
                out[inc.incident_id] = inc
    return out


@pytest.mark.faults
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_a_worker_stopped_mid_burst_loses_and_doubles_nothing(
    kafka_settings: KafkaSettings, topics: Catalog, tmp_path: Path, sig: signal.Signals
) -> None:
    config = tmp_path / "config.yaml"
    text = Path("examples/config/tocsin.yaml").read_text()
    text = text.replace("group_by: [alertname, service, host]", "group_by: [alertname, service]")
    config.write_text(text.replace("timeout: 5m", "timeout: 1h"))
    log = tmp_path / "agents.log"
    first = start_agents(kafka_settings, config, log)
    producer = make_producer(kafka_settings)
    now = datetime.now(UTC)
    records = []
    for _ in range(ROUNDS):
        for s in range(50):
            for h in range(20):
                labels = {"alertname": "cpu", "service": f"svc-{s:02d}", "host": f"h{h}"}
                a = Alert(fingerprint=f"svc{s}-h{h}", status="firing", rule="cpu",
                          severity="critical", labels=labels, starts_at=now)  # fmt: skip
                records.append((a.fingerprint.encode(), encode(a)))

    changelog = f"{kafka_settings.topic_prefix}tocsin-agents-groups-changelog"

    def repeats() -> int:
        """Repeats as the group states count them (a repeat emits no snapshot)."""
        states: dict[bytes, bytes] = {}
        for key, value in read_topic_keyed(kafka_settings, changelog):
            states[key] = value  # partition by partition, in offset order: the last wins
        docs = [orjson.loads(v) for v in states.values() if v]
        return sum(m["repeats"] for d in docs for m in d["members"].values())

    second = None
    try:
        port = health_port(log, 60)
        _wait(lambda: _ready(port), 120, "the first worker ready", log, first)
        for key, value in records:
            producer.produce(topics.name("alerts"), key=key, value=value)
            producer.poll(0)
        assert producer.flush(30) == 0
        _wait(lambda: repeats() > 0, 60, "the burst under way", log, first)
        os.killpg(first.pid, sig)  # mid-burst: batches in flight
        first.wait(60)
        second = start_agents(kafka_settings, config, tmp_path / "agents2.log")

        def settled() -> bool:
            incs = _latest(kafka_settings, topics)
            members = sum(len(i.alerts) for i in incs.values())
            return len(incs) == 50 and members == 1000 and repeats() >= 1000 * (ROUNDS - 1)

        # the killed member's partitions wait for its session to expire: on a loaded
        # machine that and the replay take most of a minute
        _wait(settled, 300, "every transition applied", tmp_path / "agents2.log", second)
        # and every record consumed and committed, the router's and the deciders': what
        # was applied twice has been written by now
        app = f"{kafka_settings.topic_prefix}tocsin-agents"
        for group, inputs in ((f"{app}-router", ("alerts",)), (app, ("incident-work",))):
            assert wait_for_lag_zero(kafka_settings, topics, group, 60, inputs), group
    finally:
        kill9(first)
        if second is not None:
            kill9(second)
    assert repeats() == 1000 * (ROUNDS - 1), "each repeat counted once: none lost, none twice"
    notes = _notifications(kafka_settings, topics)
    triggers = {n.notification_id for n in notes if n.kind == "trigger"}
    assert len(triggers) == 100, "50 incidents x (on-call DM + team channel)"
    # a kill between a batch's acknowledged effects and its state write re-emits them
    # under the same ids (docs/incidents.md): the ledger's readers and the notifier drop
    # a copy by its id, so a copy must be the same entry, and a person sees each page once
    ledger = [orjson.loads(v) for vs in read_topic(kafka_settings, topics.name("incident-events"))
              .values() for v in vs]  # fmt: skip
    kinds: dict[tuple[str, int], set[str]] = {}
    for e in ledger:
        kinds.setdefault((e["incident_id"], e["seq"]), set()).add(e["kind"])
    assert all(len(k) == 1 for k in kinds.values()), "an entry id names one entry"
    assert sum(1 for k in kinds.values() if k == {"opened"}) == 50, "each incident opened once"
    assert _pages_seen(kafka_settings, topics, tmp_path, {n.notification_id for n in notes}) == (
        100
    ), "each page shown once"


def _pages_seen(settings: KafkaSettings, topics: Catalog, tmp_path: Path, ids: set[str]) -> int:
    """What people see of the outbox: the real notifier delivers it to a fake Slack; the
    messages it posts (thread replies aside), once every id was delivered."""
    slack = FakeSlack()
    log = tmp_path / "notifier.log"
    with serve(slack.app()) as url:
        notifier = start_notifier(settings, log, TOCSIN_SLACK_BASE_URL=f"{url}/api/")
        try:

            def delivered() -> bool:
                receipts = [decode(DeliveryReceipt, v)
                            for v in read_values(settings, topics.name("receipts"))]  # fmt: skip
                return {r.notification_id for r in receipts if r.outcome == "delivered"} >= ids

            _wait(delivered, 120, "every notification delivered", log, notifier)
            group = f"{settings.topic_prefix}notifier"
            assert wait_for_lag_zero(settings, topics, group, 60, ("notifications",)), group
        finally:
            kill9(notifier)
    return len([a for m, a in slack.calls if m == "chat.postMessage" and not a.get("thread_ts")])

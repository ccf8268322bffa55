"""SIGTERM (or kill -9) an agents worker while it decides a burst in batches, start
another: every transition is applied once, none lost, no incident opened twice."""

from __future__ import annotations

import os
import signal
import time
import urllib.request
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from harness.workers import health_port
from schemas import Alert, Incident, decode, encode
from streams.catalog import Catalog
from streams.kafka import make_producer, read_topic_keyed
from streams.settings import KafkaSettings
from tests.integration.agents.test_agents_worker import (
    _notifications,
    _wait,
    read_topic,
    start_agents,
)
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
        time.sleep(2)  # anything applied twice would show by now
    finally:
        kill9(first)
        if second is not None:
            kill9(second)
    assert repeats() == 1000 * (ROUNDS - 1), "each repeat counted once: none lost, none twice"
    # raw records, not distinct ids: a page written twice must show
    triggers = [n.notification_id for n in _notifications(kafka_settings, topics)
                if n.kind == "trigger"]  # fmt: skip
    assert len(set(triggers)) == 100, "50 incidents x (on-call DM + team channel)"
    twice = [i for i, n in Counter(triggers).items() if n > 1]
    assert not twice, f"paged more than once: {twice[:5]}"
    ledger = [orjson.loads(v) for vs in read_topic(kafka_settings, topics.name("incident-events"))
              .values() for v in vs]  # fmt: skip
    entries = Counter((e["incident_id"], e["seq"]) for e in ledger)
    assert not [k for k, n in entries.items() if n > 1], "no ledger entry written twice"
    assert sum(1 for e in ledger if e["kind"] == "opened") == 50, "each incident opened once"

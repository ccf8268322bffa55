"""10,000 alert transitions for 50 services: the expected incidents, one page per target."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from harness.workers import kill9, start_agents
from schemas import Alert, Incident, decode, encode
from streams.catalog import Catalog
from streams.kafka import make_producer
from streams.settings import KafkaSettings
from tests.integration.agents.test_agents_worker import _notifications, _wait, read_topic


def test_alert_burst_groups_into_one_incident_per_service(
    kafka_settings: KafkaSettings, topics: Catalog, tmp_path: Path
) -> None:
    config = tmp_path / "config.yaml"
    text = Path("examples/config/tocsin.yaml").read_text()
    text = text.replace("group_by: [alertname, service, host]", "group_by: [alertname, service]")
    config.write_text(text.replace("timeout: 5m", "timeout: 1h"))
    log = tmp_path / "agents.log"
    worker = start_agents(kafka_settings, config, log)
    producer = make_producer(kafka_settings)
    now = datetime.now(UTC)
    sent = 0

    def produce(rounds: range) -> None:
        nonlocal sent
        for round_ in rounds:  # 50 services x 20 hosts x 10 rounds = 10,000 transitions
            for s in range(50):
                for h in range(20):
                    status = "resolved" if round_ == 9 and h % 2 else "firing"
                    labels = {"alertname": "cpu", "service": f"svc-{s:02d}", "host": f"h{h}"}
                    a = Alert(
                        fingerprint=f"svc{s}-h{h}", status=status, rule="cpu",  # type: ignore[arg-type]
                        severity="critical", labels=labels, starts_at=now,
                        ends_at=now if status == "resolved" else None,
                    )  # fmt: skip
                    producer.produce(topics.name("alerts"), key=a.fingerprint.encode(),
                                     value=encode(a))  # fmt: skip
                    sent += 1
            producer.poll(0)
        assert producer.flush(30) == 0

    def latest() -> dict[str, Incident]:
        committed = read_topic(kafka_settings, topics.name("incidents"))
        out: dict[str, Incident] = {}
        for vs in committed.values():
            for v in vs:
                inc = decode(Incident, v)
                if inc.incident_id not in out or inc.version > out[inc.incident_id].version:
                    out[inc.incident_id] = inc
        return out

    # Kafka orders alerts per partition only, and one group's alerts come from several
    # partitions: the half-resolving last round is sent once every member has joined,
    # or a member read late could find its group resolved by the others (and reopen it)
    produce(range(9))
    try:

        def joined() -> bool:
            incs = latest()
            return len(incs) == 50 and sum(len(i.alerts) for i in incs.values()) == 1000

        _wait(joined, 120, "every member joined", log, worker)
        produce(range(9, 10))
        assert sent == 10_000

        def settled() -> bool:
            incs = latest()
            members = sum(len(i.alerts) for i in incs.values())
            repeats = sum(a.repeats for i in incs.values() for a in i.alerts)
            resolved = sum(a.status == "resolved" for i in incs.values() for a in i.alerts)
            return len(incs) == 50 and members == 1000 and repeats >= 500 * 8 + 500 * 8 \
                and resolved == 500  # fmt: skip

        _wait(settled, 120, "every transition applied", log, worker)
    finally:
        kill9(worker)
    notes = _notifications(kafka_settings, topics)
    per_target_step = Counter(n.notification_id for n in notes if n.kind == "trigger")
    assert len(per_target_step) == 100, "50 incidents x (on-call DM + team channel)"
    incidents = {n.incident_id for n in notes}
    assert len(incidents) == 50
    assert not [n for n in notes if n.kind == "escalate"]

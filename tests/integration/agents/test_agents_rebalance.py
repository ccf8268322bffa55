"""Two agents workers share the groups; a rebalance duplicates no incident and no page."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from confluent_kafka import KafkaException

from harness.workers import kill9, start_agents
from schemas import Alert, Incident, decode, encode
from streams.catalog import Catalog
from streams.kafka import make_admin, make_producer
from streams.settings import KafkaSettings
from tests.integration.agents.test_agents_worker import _notifications, _wait, read_topic

SERVICES = 20


def _send(settings: KafkaSettings, topics: Catalog, status: str, hosts: range) -> None:
    producer = make_producer(settings)
    now = datetime.now(UTC)
    for s in range(SERVICES):
        for h in hosts:
            labels = {"alertname": "disk", "service": f"svc-{s:02d}", "host": f"h{h}"}
            a = Alert(fingerprint=f"s{s}-h{h}", status=status, rule="disk",  # type: ignore[arg-type]
                      severity="critical", labels=labels, starts_at=now,
                      ends_at=now if status == "resolved" else None)  # fmt: skip
            producer.produce(topics.name("alerts"), key=a.fingerprint.encode(), value=encode(a))
    assert producer.flush(30) == 0


def _members(settings: KafkaSettings) -> int:
    """Members of the agents' consumer group once it is Stable (the rebalance is done;
    faust's own assignor encodes assignments the admin API cannot read, so count members)."""
    group = f"{settings.topic_prefix}tocsin-agents"
    admin = make_admin(settings)  # held: a collected client cancels its own request
    future = admin.describe_consumer_groups([group], request_timeout=5)[group]
    try:
        desc = future.result(timeout=10)
    except (KafkaException, TimeoutError):
        return 0  # the coordinator is busy rebalancing: ask again
    if str(desc.state).rsplit(".", 1)[-1] != "STABLE":
        return 0
    return len(desc.members)


def _latest(settings: KafkaSettings, topics: Catalog) -> dict[str, Incident]:
    latest: dict[str, Incident] = {}
    for vs in read_topic(settings, topics.name("incidents")).values():
        for v in vs:
            inc = decode(Incident, v)
            if inc.incident_id not in latest or inc.version > latest[inc.incident_id].version:
                latest[inc.incident_id] = inc
    return latest


def test_second_worker_joins_and_takes_over_groups_without_duplicates(
    kafka_settings: KafkaSettings, topics: Catalog, tmp_path: Path
) -> None:
    config = tmp_path / "config.yaml"
    text = Path("examples/config/tocsin.yaml").read_text()
    text = text.replace("group_by: [alertname, service, host]", "group_by: [alertname, service]")
    config.write_text(text.replace("timeout: 5m", "timeout: 1h"))
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = start_agents(kafka_settings, config, tmp_path / "a" / "agents.log")
    b = None
    try:
        _send(kafka_settings, topics, "firing", range(3))
        _wait(lambda: len(_latest(kafka_settings, topics)) == SERVICES, 90, "20 incidents",
              tmp_path / "a" / "agents.log", a)  # fmt: skip
        b = start_agents(kafka_settings, config, tmp_path / "b" / "agents.log")
        _wait(lambda: _members(kafka_settings) == 2, 60, "the second worker in the group",
              tmp_path / "b" / "agents.log", b)  # fmt: skip
        _send(kafka_settings, topics, "firing", range(3, 6))

        def all_joined() -> bool:
            latest = _latest(kafka_settings, topics)
            return sum(len(i.alerts) for i in latest.values()) == SERVICES * 6

        # resolve only once every alert joined: alerts of one group come from several
        # alerts partitions, so an early "all resolved" would rightly reopen and page again
        _wait(all_joined, 90, "new alerts joined after the rebalance",
              tmp_path / "b" / "agents.log", b)  # fmt: skip
        _send(kafka_settings, topics, "resolved", range(6))

        def all_resolved() -> bool:
            latest = _latest(kafka_settings, topics)
            return len(latest) == SERVICES and all(
                i.status == "resolved" and len(i.alerts) == 6 for i in latest.values()
            )

        _wait(all_resolved, 120, "every incident resolved with 6 alerts",
              tmp_path / "b" / "agents.log", b)  # fmt: skip
        assert a.poll() is None, "the first worker kept running through the rebalance"
    finally:
        kill9(a)
        if b is not None:
            kill9(b)
    notes = _notifications(kafka_settings, topics)
    copies = Counter(n.notification_id for n in notes)
    assert [nid for nid, c in copies.items() if c > 1] == [], "no notification written twice"
    triggers = Counter((n.incident_id, n.target) for n in notes if n.kind == "trigger")
    assert len(triggers) == SERVICES * 2 and set(triggers.values()) == {1}
    resolves = Counter((n.incident_id, n.target) for n in notes if n.kind == "resolve")
    assert resolves == triggers, "every paged target heard the resolution, once"
    assert len({n.incident_id for n in notes}) == SERVICES, "no duplicate incident"

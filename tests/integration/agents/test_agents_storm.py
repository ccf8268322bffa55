"""An alert storm in one group, beside normal traffic: the agents stay up, other groups
are still paged in time, and the stormy incident carries a digest of the storm."""

from __future__ import annotations

import math
import os
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from harness.workers import kill9, start_agents
from processors.incidents import storm as digest
from schemas import Alert, Incident, IncidentEvent, Notification, decode, encode
from streams.catalog import Catalog
from streams.kafka import make_producer
from streams.settings import KafkaSettings
from tests.integration.agents.test_agents_worker import _wait, fast_config, read_topic

__all__ = ["fast_config"]  # the fixture, used by name

# the soak (outside `make test`) runs a larger storm through the same test
STORM = int(os.environ.get("TOCSIN_STORM_ALERTS", "10000"))
# the first page of a critical alert (group_wait_critical 0 s) in another group, under
# the storm, on a 2-core machine shared with the broker and other work
PAGE_WITHIN = 10.0
RECORD_BOUND = 512 * 1024  # any group state or snapshot record


def _storm_alert(i: int, status: str) -> Alert:
    """PagerDuty-like events without alertname/service/host: one group for them all."""
    now = datetime.now(UTC)
    return Alert(fingerprint=f"pd-{i:06d}", status=status, rule="pagerduty_event",  # type: ignore[arg-type]
                 source="pagerduty", severity="warning",
                 labels={"source": f"host-{i % 40:02d}", "component": f"disk-{i % 3}"},
                 summary=f"disk full on host-{i % 40:02d}", starts_at=now,
                 ends_at=now if status == "resolved" else None)  # fmt: skip


def _normal_alert(host: str) -> Alert:
    return Alert(fingerprint=f"cpu-{host}", status="firing", rule="cpu_saturation_critical",
                 severity="critical", labels={"alertname": "cpu_saturation_critical",
                                              "service": "search", "host": host},
                 summary=f"CPU 95% on {host}", value=95.0, threshold=85.0,
                 starts_at=datetime.now(UTC))  # fmt: skip


def test_a_storm_in_one_group_does_not_stop_pages_for_the_others(
    kafka_settings: KafkaSettings, topics: Catalog, fast_config: Path, tmp_path: Path
) -> None:
    log = tmp_path / "agents.log"
    worker = start_agents(kafka_settings, fast_config, log)
    producer = make_producer(kafka_settings, **{"linger.ms": 20})
    alerts_topic = topics.name("alerts")

    def send(a: Alert) -> None:
        while True:
            try:
                producer.produce(alerts_topic, key=a.fingerprint.encode(), value=encode(a))
                return
            except BufferError:
                producer.poll(0.05)

    def notes() -> list[Notification]:
        committed = read_topic(kafka_settings, topics.name("notifications"))
        return [decode(Notification, v) for vs in committed.values() for v in vs]

    def paged(host: str) -> bool:
        return any(n.kind == "trigger" and f"on {host}" in n.title for n in notes())

    def incidents() -> dict[str, Incident]:
        latest: dict[str, Incident] = {}
        for vs in read_topic(kafka_settings, topics.name("incidents")).values():
            for v in vs:
                inc = decode(Incident, v)
                if inc.incident_id not in latest or inc.version > latest[inc.incident_id].version:
                    latest[inc.incident_id] = inc
        return latest

    def stormy() -> Incident | None:
        return next((i for i in incidents().values() if i.storm is not None), None)

    try:
        send(_normal_alert("web-01"))  # the worker is up and paging before the storm
        assert producer.flush(30) == 0
        _wait(lambda: paged("web-01"), 120, "the first page before the storm", log, worker)

        storm_sent = threading.Event()

        def storm(status: str) -> None:
            for i in range(STORM):
                send(_storm_alert(i, status))
                if i % 500 == 0:
                    producer.poll(0)
            assert producer.flush(60) == 0
            storm_sent.set()

        started = time.monotonic()
        thread = threading.Thread(target=storm, args=("firing",))
        thread.start()
        # normal traffic beside the storm: another group's first page, timed from its send
        # (the polling interval of _wait included)
        while time.monotonic() - started < 1.0 and thread.is_alive():
            time.sleep(0.05)
        send(_normal_alert("web-02"))
        sent_at = time.monotonic()
        _wait(lambda: paged("web-02"), 60, "the page beside the storm", log, worker)
        latency = time.monotonic() - sent_at
        thread.join()
        assert storm_sent.is_set()
        assert latency <= PAGE_WITHIN, f"page beside the storm after {latency:.1f} s"

        def digested() -> bool:
            inc = stormy()
            return inc is not None and inc.storm is not None and \
                len(inc.alerts) + inc.storm.events >= STORM  # fmt: skip

        # the digest reaches the snapshot every storm.EVERY (10 s)
        _wait(digested, 90, "every storm alert in the stormy incident", log, worker)
        inc = stormy()
        assert inc is not None and inc.storm is not None and inc.status == "triggered"
        # every summarised alert is distinct and fires: both counts are estimates within
        # a few percent; the label tallies count the alerts the sketch told apart, about
        # m(1 - e^(-n/m)) of n
        m, n = digest.SKETCH_BITS, STORM - len(inc.alerts)
        told_apart = m * (1 - math.exp(-n / m))
        assert len(inc.alerts) == digest.MAX_TRACKED
        assert abs(inc.storm.summarised - n) <= 0.03 * n, (inc.storm.summarised, n)
        assert abs(inc.storm.firing - n) <= 0.03 * n, (inc.storm.firing, n)
        assert set(inc.storm.by_label) == {"source", "component"}
        tallied = sum(inc.storm.by_label["component"].values.values())
        assert 0.97 * told_apart <= tallied <= n

        # the storm resolves: the incident resolves once every alert of it did
        thread = threading.Thread(target=storm, args=("resolved",))
        storm_sent.clear()
        thread.start()
        thread.join()
        assert storm_sent.is_set()

        def resolved() -> bool:
            now = stormy()
            return now is not None and now.incident_id == inc.incident_id and \
                now.status == "resolved"  # fmt: skip

        _wait(resolved, 90, "the stormy incident resolved", log, worker)
        assert worker.poll() is None, "the agents never exit"
    finally:
        kill9(worker)
    text = log.read_text()
    assert "decide_failed" not in text and "MSG_SIZE_TOO_LARGE" not in text
    ledger = [decode(IncidentEvent, v)
              for vs in read_topic(kafka_settings, topics.name("incident-events")).values()
              for v in vs if b'"storm"' in v]  # fmt: skip
    assert any(e.message.startswith("storm: ") and "more alerts summarised" in e.message
               for e in ledger)  # fmt: skip
    # nothing that grows with the storm was written as one record
    changelog = f"{kafka_settings.topic_prefix}tocsin-agents-groups-changelog"
    for name in (changelog, topics.name("incidents"), topics.name("incident-work")):
        sizes = [len(v) for vs in read_topic(kafka_settings, name).values() for v in vs]
        assert sizes and max(sizes) < RECORD_BOUND, name

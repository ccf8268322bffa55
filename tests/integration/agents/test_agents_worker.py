"""Real faust agents on the real broker: alerts in, pages out, escalation, ack, resolve."""

from __future__ import annotations

import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson
import pytest
from confluent_kafka import KafkaException

from harness.workers import health_port, kill9, start_agents
from schemas import Alert, Command, IncidentEvent, Notification, decode, encode
from streams.catalog import Catalog
from streams.kafka import make_admin, make_producer
from streams.settings import KafkaSettings
from tests.processor_support import read_all

CONFIG = Path("examples/config/tocsin.yaml")


@pytest.fixture
def fast_config(tmp_path: Path) -> Path:
    text = CONFIG.read_text().replace("timeout: 5m", "timeout: 4s")
    text = text.replace("timeout: 10m", "timeout: 4s")
    # the weekly rotation alternates alice and bob by calendar week: an override puts
    # alice on call for the test's hour, whatever the date it runs on
    now = datetime.now(UTC)
    window = f"{{user: alice, start: {(now - timedelta(hours=1)).isoformat()}, " \
             f"end: {(now + timedelta(hours=1)).isoformat()}}}"  # fmt: skip
    text = text.replace("overrides: []", f"overrides: [{window}]", 1)
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def _alert(status: str, fp: str = "cpu-web-03") -> Alert:
    now = datetime.now(UTC)
    return Alert(fingerprint=fp, status=status, rule="cpu_saturation_critical",  # type: ignore[arg-type]
                 severity="critical", labels={"alertname": "cpu_saturation_critical",
                                              "service": "search", "host": "web-03"},
                 summary="CPU 95% on web-03", value=95.0, threshold=85.0, starts_at=now,
                 ends_at=now if status == "resolved" else None)  # fmt: skip


def read_topic(settings: KafkaSettings, topic: str) -> dict[int, list[bytes]]:
    """read_all, retried: right after topics are created a partition's leader may not be
    known yet (NOT_LEADER_FOR_PARTITION from the watermark query)."""
    for attempt in range(10):
        try:
            return read_all(settings, topic)
        except KafkaException:
            if attempt == 9:
                raise
            time.sleep(0.5)
    raise AssertionError("unreachable")


def _notifications(settings: KafkaSettings, catalog: Catalog) -> list[Notification]:
    committed = read_topic(settings, catalog.name("notifications"))
    return [decode(Notification, v) for vs in committed.values() for v in vs]


def _ledger_kinds(settings: KafkaSettings, catalog: Catalog) -> list[str]:
    committed = read_topic(settings, catalog.name("incident-events"))
    ledger = [decode(IncidentEvent, v) for vs in committed.values() for v in vs]
    return [e.kind for e in sorted(ledger, key=lambda e: e.seq)]


def _wait(pred: object, timeout: float, what: str, log: Path,
          proc: subprocess.Popen[bytes] | None = None) -> None:  # fmt: skip
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the worker exited while waiting for {what}\n"
                                 f"{log.read_text()[-3000:]}")  # fmt: skip
        if pred():  # type: ignore[operator]
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}\n{log.read_text()[-3000:]}")


def test_page_escalate_ack_resolve(
    kafka_settings: KafkaSettings, topics: Catalog, fast_config: Path, tmp_path: Path
) -> None:
    log = tmp_path / "agents.log"
    worker = start_agents(kafka_settings, fast_config, log)
    producer = make_producer(kafka_settings)
    try:
        producer.produce(topics.name("alerts"), key=b"cpu-web-03", value=encode(_alert("firing")))
        producer.produce(topics.name("alerts"), key=b"cpu-web-03", value=encode(_alert("firing")))
        producer.produce(topics.name("alerts"), key=b"junk", value=b"{not an alert")
        assert producer.flush(10) == 0

        def paged(kind: str, target: str) -> bool:
            return any(n.kind == kind and n.target == target
                       for n in _notifications(kafka_settings, topics))  # fmt: skip

        _wait(lambda: paged("trigger", "U0ALICE"), 90, "the first page", log, worker)
        _wait(lambda: paged("escalate", "U0BOB"), 30, "escalation to level 2", log, worker)
        incident_id = _notifications(kafka_settings, topics)[0].incident_id

        ack = Command(action="ack", incident_id=incident_id, actor="bob", at=datetime.now(UTC))
        producer.produce(topics.name("commands"), key=incident_id.encode(), value=encode(ack))
        assert producer.flush(10) == 0
        _wait(lambda: "acknowledged" in _ledger_kinds(kafka_settings, topics), 30, "the ack",
              log, worker)  # fmt: skip
        time.sleep(6)  # past level 2's 4 s timeout: unacknowledged, the policy would repeat
        producer.produce(topics.name("alerts"), key=b"cpu-web-03",
                         value=encode(_alert("resolved")))  # fmt: skip
        assert producer.flush(10) == 0
        _wait(lambda: paged("resolve", "U0BOB"), 30, "the resolution", log, worker)

        # the agents' input lag is on /metrics for the lag alerts: all of `alerts` consumed
        scrape = f"http://127.0.0.1:{health_port(log)}/metrics"
        alerts_lag = f'tocsin_consumer_lag{{partition="0",topic="{topics.name("alerts")}"}}'

        def lag_reported() -> bool:
            lines = httpx.get(scrape).text.splitlines()
            return any(line.startswith(alerts_lag) for line in lines)

        _wait(lag_reported, 15, "the router's consumer lag", log, worker)
        values = [float(line.rsplit(" ", 1)[1]) for line in httpx.get(scrape).text.splitlines()
                  if line.startswith("tocsin_consumer_lag{")]  # fmt: skip
        assert values and max(values) == 0.0
    finally:
        kill9(worker)

    # faust's own lines (its warnings and crashes among them) reach the worker's log as
    # JSON, as the worker's are: the harness starts it with faust's log level at info
    faust_lines = [line for line in log.read_text().splitlines()
                   if line.startswith("{") and '"logger":"faust.' in line]  # fmt: skip
    assert any("Ready" in line for line in faust_lines), "faust's lines are in the log"
    # the topics the worker made beside the catalog's: its tables' changelogs, and no
    # leader-election topic (it has nothing that runs on the leader alone)
    listed = make_admin(kafka_settings).list_topics(timeout=10).topics
    made = {t for t in listed if t.startswith(kafka_settings.topic_prefix)} - {
        t.name for t in topics.resolved()
    }
    assert made == {
        f"{kafka_settings.topic_prefix}tocsin-agents-{table}-changelog"
        for table in ("groups", "heartbeats")
    }, made
    notes = _notifications(kafka_settings, topics)
    pages = [(n.kind, n.target) for n in notes if n.kind in ("trigger", "escalate")]
    assert pages.count(("trigger", "U0ALICE")) == 1, "one page, although the alert came twice"
    assert ("escalate", "U0ALICE") not in pages, "no escalation after the ack"
    resolved_to = {n.target for n in notes if n.kind == "resolve"}
    assert resolved_to >= {"U0ALICE", "#platform-alerts", "U0BOB", "platform-pagerduty"}
    kinds = _ledger_kinds(kafka_settings, topics)
    for expected in ("opened", "notified", "escalated", "acknowledged", "resolved"):
        assert expected in kinds
    assert read_topic(kafka_settings, topics.name("deadletter")), "the junk alert was dead-lettered"

    # the log follows the alert to its incident and to every page
    events = [orjson.loads(line) for line in log.read_bytes().splitlines()
              if line.startswith(b"{")]  # fmt: skip
    opened = [e for e in events if e.get("event") == "incident_opened"]
    assert [(e["incident_id"], e["fingerprint"]) for e in opened] == [
        (notes[0].incident_id, "cpu-web-03")
    ]
    requested = {e["notification_id"] for e in events if e.get("event") == "notification_requested"}
    assert requested == {n.notification_id for n in notes}

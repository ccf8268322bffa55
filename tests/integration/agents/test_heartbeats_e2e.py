"""Heartbeats through real agents on the real broker: a job that stops pinging pages
once, its next ping resolves the incident; Prometheus' Watchdog alert pings its
heartbeat and never opens an incident of its own; a kill -9 right after the missed
heartbeat's alert was written pages nobody twice."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import yaml

from harness.workers import kill9, start_agents
from schemas import Alert, Notification, decode, encode
from schemas.heartbeats import HeartbeatPing, heartbeat_key
from streams.catalog import Catalog
from streams.kafka import make_producer, read_topic
from streams.settings import KafkaSettings

CONFIG = {
    "teams": [{"id": "ops", "slack_channel": "#ops"}],
    "route": {"team": "ops"},
    "grouping": {"group_by": ["alertname"], "group_wait_critical": "0s"},
    "heartbeats": [
        {"name": "nightly-backup", "interval": "3s", "labels": {"service": "db"}},
        {"name": "prometheus-watchdog", "interval": "3s",
         "alert": [{"label": "alertname", "value": "Watchdog"}]},
    ],
}  # fmt: skip


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(CONFIG))
    return path


def _wait(pred: Callable[[], bool], timeout: float, what: str, log: Path,
          proc: subprocess.Popen[bytes]) -> None:  # fmt: skip
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the agents exited waiting for {what}\n{log.read_text()[-3000:]}")
        if pred():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}\n{log.read_text()[-3000:]}")


def _alerts(settings: KafkaSettings, topics: Catalog, name: str) -> list[Alert]:
    out = [decode(Alert, v) for v in read_topic(settings, topics.name("alerts"))]
    return [a for a in out if a.source == "heartbeat" and a.labels.get("heartbeat") == name]


def _pages(settings: KafkaSettings, topics: Catalog) -> list[Notification]:
    return [decode(Notification, v) for v in read_topic(settings, topics.name("notifications"))]


def _until_resolved(items: list[Alert] | list[Notification], resolved: str) -> list[object]:
    """The items before the first resolution, in topic order: a heartbeat whose pings
    stop again after it was resolved is missed again, which is another story."""
    out: list[object] = []
    for item in items:
        if getattr(item, "status", None) == resolved or getattr(item, "kind", None) == resolved:
            break
        out.append(item)
    return out


def _ping(producer: object, topics: Catalog, name: str) -> None:
    ping = HeartbeatPing(name=name, produced_at=datetime.now(UTC))
    # librdkafka's default partitioner, as the gateway's: the agents move it to its owner
    producer.produce(topics.name("heartbeats"), key=heartbeat_key("default", name),  # type: ignore[attr-defined]
                     value=encode(ping))  # fmt: skip
    assert producer.flush(10) == 0  # type: ignore[attr-defined]


def _watchdog() -> Alert:
    now = datetime.now(UTC)
    return Alert(fingerprint="watchdog-fp", status="firing", rule="Watchdog",
                 source="alertmanager", severity="info",
                 labels={"alertname": "Watchdog", "severity": "none"},
                 summary="An alert that should always be firing", starts_at=now)  # fmt: skip


def test_missed_heartbeats_page_once_and_pings_resolve_them(
    kafka_settings: KafkaSettings, topics: Catalog, tmp_path: Path
) -> None:
    log = tmp_path / "agents.log"
    agents = start_agents(kafka_settings, _config(tmp_path), log)
    producer = make_producer(kafka_settings)
    try:
        _ping(producer, topics, "nightly-backup")
        for _ in range(6):  # Prometheus re-sends the Watchdog alert while it runs
            producer.produce(topics.name("alerts"), key=b"watchdog-fp", value=encode(_watchdog()))
            assert producer.flush(10) == 0
            time.sleep(1)
        # the backup stopped long ago; the Watchdog stops now
        _wait(lambda: bool(_alerts(kafka_settings, topics, "nightly-backup")), 60,
              "the missed backup", log, agents)  # fmt: skip
        _wait(lambda: bool(_alerts(kafka_settings, topics, "prometheus-watchdog")), 30,
              "the missed Watchdog", log, agents)  # fmt: skip
        watchdog = _alerts(kafka_settings, topics, "prometheus-watchdog")[0]
        assert watchdog.starts_at.timestamp() > time.time() - 15, "not missed while it was sent"

        def paged(name: str) -> bool:
            return any(n.kind == "trigger" and n.labels.get("heartbeat") == name
                       for n in _pages(kafka_settings, topics))  # fmt: skip

        _wait(lambda: paged("nightly-backup") and paged("prometheus-watchdog"), 30,
              "the pages", log, agents)  # fmt: skip
        _ping(producer, topics, "nightly-backup")
        producer.produce(topics.name("alerts"), key=b"watchdog-fp", value=encode(_watchdog()))
        assert producer.flush(10) == 0

        def resolved(name: str) -> bool:
            return any(n.kind == "resolve" and n.labels.get("heartbeat") == name
                       for n in _pages(kafka_settings, topics))  # fmt: skip

        _wait(lambda: resolved("nightly-backup") and resolved("prometheus-watchdog"), 30,
              "the resolutions", log, agents)  # fmt: skip
    finally:
        kill9(agents)
    pages = _pages(kafka_settings, topics)
    assert not any(n.labels.get("alertname") == "Watchdog" for n in pages), (
        "the Watchdog alert itself never opens an incident")  # fmt: skip
    for name in ("nightly-backup", "prometheus-watchdog"):
        statuses = [a.status for a in _alerts(kafka_settings, topics, name)]
        assert statuses[:2] == ["firing", "resolved"], (name, statuses)
        mine = [n for n in pages if n.labels.get("heartbeat") == name]
        triggers = {n.notification_id for n in _until_resolved(mine, "resolve")
                    if n.kind == "trigger"}  # type: ignore[attr-defined]  # fmt: skip
        assert len(triggers) == 1, (name, triggers)


def test_kill9_right_after_the_missed_alert_pages_nobody_twice(
    kafka_settings: KafkaSettings, topics: Catalog, tmp_path: Path
) -> None:
    config = _config(tmp_path)
    log = tmp_path / "agents.log"
    agents = start_agents(kafka_settings, config, log)
    producer = make_producer(kafka_settings)
    try:
        _ping(producer, topics, "nightly-backup")
        _wait(lambda: bool(_alerts(kafka_settings, topics, "nightly-backup")), 60,
              "the missed backup", log, agents)  # fmt: skip
        kill9(agents)  # the alert is in Kafka; the table write may or may not be
        agents = start_agents(kafka_settings, config, log)
        _wait(lambda: any(n.kind == "trigger" for n in _pages(kafka_settings, topics)), 90,
              "the page", log, agents)  # fmt: skip
        time.sleep(1)
        kill9(agents)  # once more, with the page written
        agents = start_agents(kafka_settings, config, log)
        _ping(producer, topics, "nightly-backup")
        _wait(lambda: any(n.kind == "resolve" for n in _pages(kafka_settings, topics)), 90,
              "the resolution", log, agents)  # fmt: skip
    finally:
        kill9(agents)
    alerts = _until_resolved(_alerts(kafka_settings, topics, "nightly-backup"), "resolved")
    firing = {a.event_id for a in alerts}  # type: ignore[attr-defined]
    assert len(firing) == 1, f"one missed heartbeat, one alert id: {alerts}"
    pages = _until_resolved(_pages(kafka_settings, topics), "resolve")
    triggers = {n.notification_id for n in pages if n.kind == "trigger"}  # type: ignore[attr-defined]
    assert len(triggers) == 1, triggers

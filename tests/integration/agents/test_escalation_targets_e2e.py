"""One policy pages PagerDuty, ilert, a signed webhook and a Slack channel: real agents
and a real notifier on the real broker, each receiver a local HTTP server. The firing
alert reaches all four, the resolution too, and the webhook's signature and timestamp
verify with the receiver's secret."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import yaml

from connectors.sinks.webhook import verify
from harness.workers import kill9, start_agents
from schemas import Alert, encode
from streams.catalog import Catalog
from streams.demo.fake_slack import FakeSlack, serve
from streams.kafka import make_producer
from streams.settings import KafkaSettings
from tests.fakes.http import FakeReceiver, Received

SECRET = "hook-secret"
CONFIG = {
    "teams": [{"id": "payments"}],
    "escalation_policies": [{"id": "all-kinds", "levels": [{"timeout": "1h", "targets": [
        {"kind": "pagerduty", "ref": "payments"},
        {"kind": "ilert", "ref": "payments"},
        {"kind": "webhook", "ref": "bot"},
        {"kind": "slack", "ref": "#payments-war-room"},
    ]}]}],
    "route": {"team": "payments", "escalation_policy": "all-kinds"},
    "grouping": {"group_by": ["alertname"], "group_wait_critical": "0s"},
}  # fmt: skip


def _alert(status: str) -> Alert:
    now = datetime.now(UTC)
    return Alert(fingerprint="checkout-5xx", status=status, rule="checkout_errors",  # type: ignore[arg-type]
                 severity="critical", labels={"alertname": "checkout_errors"},
                 summary="5xx ratio 12% on checkout", starts_at=now,
                 ends_at=now if status == "resolved" else None)  # fmt: skip


def _wait(pred: Callable[[], bool], timeout: float, what: str, logs: list[Path],
          procs: list[subprocess.Popen[bytes]]) -> None:  # fmt: skip
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for proc, log in zip(procs, logs, strict=True):
            if proc.poll() is not None:
                tail = log.read_text()[-3000:]
                raise AssertionError(f"a worker exited waiting for {what}\n{tail}")
        if pred():
            return
        time.sleep(0.3)
    tails = "\n".join(log.read_text()[-2000:] for log in logs)
    raise AssertionError(f"timed out waiting for {what}\n{tails}")


def _on(received: list[Received], path: str) -> list[Received]:
    return [r for r in list(received) if r.path == path]


def test_a_policy_pages_and_resolves_through_every_target_kind(
    kafka_settings: KafkaSettings, topics: Catalog, tmp_path: Path
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(CONFIG))
    receiver, slack = FakeReceiver(), FakeSlack(names={"payments-war-room": "C0WAR"})
    with serve(receiver.app()) as http_url, serve(slack.app()) as slack_url:
        env = {**os.environ, "TOCSIN_BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers,
               "TOCSIN_TOPIC_PREFIX": kafka_settings.topic_prefix,
               "TOCSIN_PARTITIONS": str(kafka_settings.partitions), "TOCSIN_LOG_FORMAT": "json",
               "TOCSIN_SLACK_BASE_URL": f"{slack_url}/api/",
               "PAGERDUTY_ROUTING_KEYS": "payments=PD-ROUTING-KEY",
               "TOCSIN_PAGERDUTY_URL": f"{http_url}/pd",
               "ILERT_API_KEYS": "payments=il0alerts/ILERT-KEY",
               "TOCSIN_ILERT_URL": f"{http_url}/ilert",
               "TOCSIN_WEBHOOK_URLS": f"bot={http_url}/hook", "WEBHOOK_SECRETS": f"bot={SECRET}",
               }  # fmt: skip
        agents_log, notifier_log = tmp_path / "agents.log", tmp_path / "notifier.log"
        logs = [agents_log, notifier_log]
        agents = start_agents(kafka_settings, config, agents_log)
        notifier = subprocess.Popen(
            [sys.executable, "-m", "streams.cli.main", "run", "notifier", "--health-port", "0"],
            env=env, stdout=notifier_log.open("ab"), stderr=subprocess.STDOUT,
            start_new_session=True)  # fmt: skip
        procs = [agents, notifier]
        producer = make_producer(kafka_settings)
        try:
            producer.produce(topics.name("alerts"), key=b"checkout-5xx",
                             value=encode(_alert("firing")))  # fmt: skip
            assert producer.flush(10) == 0

            def paged() -> bool:
                return all(_on(receiver.received, p) for p in ("/pd", "/ilert", "/hook")) \
                    and bool(slack.messages.get("C0WAR"))  # fmt: skip

            _wait(paged, 120, "the page on every target", logs, procs)
            pd = _on(receiver.received, "/pd")[0].json()
            assert pd["routing_key"] == "PD-ROUTING-KEY" and pd["event_action"] == "trigger"
            assert "5xx ratio 12% on checkout" in pd["payload"]["summary"]
            ilert = _on(receiver.received, "/ilert")[0].json()
            assert ilert["apiKey"] == "il0alerts/ILERT-KEY" and ilert["eventType"] == "ALERT"
            assert ilert["alertKey"] == pd["dedup_key"], "one incident, one key everywhere"
            hook = _on(receiver.received, "/hook")[0]
            headers = {k.lower(): v for k, v in hook.headers.items()}
            assert verify(SECRET.encode(), headers["x-tocsin-timestamp"], hook.body,
                          headers["x-tocsin-signature"], now=time.time())  # fmt: skip
            assert not verify(b"another-secret", headers["x-tocsin-timestamp"], hook.body,
                              headers["x-tocsin-signature"], now=time.time())  # fmt: skip
            assert hook.json()["kind"] == "trigger" and hook.json()["channel"] == "webhook"
            assert "5xx ratio 12% on checkout" in str(slack.messages["C0WAR"][0]["text"])

            producer.produce(topics.name("alerts"), key=b"checkout-5xx",
                             value=encode(_alert("resolved")))  # fmt: skip
            assert producer.flush(10) == 0

            def resolved() -> bool:
                pds = [r.json()["event_action"] for r in _on(receiver.received, "/pd")]
                ils = [r.json()["eventType"] for r in _on(receiver.received, "/ilert")]
                hooks = [r.json()["kind"] for r in _on(receiver.received, "/hook")]
                updates = [m for m, a in slack.calls if m == "chat.update"]
                return "resolve" in pds and "RESOLVE" in ils and "resolve" in hooks \
                    and bool(updates)  # fmt: skip

            _wait(resolved, 60, "the resolution on every target", logs, procs)
        finally:
            kill9(notifier)
            kill9(agents)
    triggers = [r for r in _on(receiver.received, "/pd") if r.json()["event_action"] == "trigger"]
    assert len(triggers) == 1, "paged once"
    assert len(slack.messages["C0WAR"]) == 1, "one Slack message for the incident, updated"

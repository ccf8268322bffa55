"""Notifier: Slack deliveries/s against a local fake Slack Web API that answers in
~100 ms (Slack's typical latency), through the real slack-sdk, with receipts on Kafka.

1,000 incidents each get a trigger (post + metadata) and an update (chat.update +
a thread reply): 2,000 deliveries, 4,000 API calls. The notifier runs as its own
process (`tocsin run notifier`), 32 requests in flight.
Rerun: `uv run python -m benchmarks notifier`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from schemas import Notification, encode
from streams.admin import create_topics, delete_prefixed
from streams.broker.local import LocalBroker, port_of
from streams.catalog import Catalog
from streams.demo.fake_slack import FakeSlack, serve
from streams.kafka import broker_reachable, make_admin, make_producer
from streams.settings import KafkaSettings

INCIDENTS = 1_000
LATENCY_S = 0.1


def _note(i: int, kind: str, status: str) -> Notification:
    now = datetime.now(UTC)
    return Notification(
        notification_id=f"inc-{i}/{kind}/slack:C{i % 20}",
        incident_id=f"inc-{i}",
        kind=kind,  # type: ignore[arg-type]
        channel="slack",
        target=f"C{i % 20}",
        title=f"Latency SLO burn #{i}",
        status=status,
        severity="error",
        priority="P2",  # type: ignore[arg-type]
        labels={"service": f"svc-{i % 50}"},
        opened_at=now,
        at=now,
    )


def main() -> int:
    bootstrap = os.environ.get("TOCSIN_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    if not broker_reachable(KafkaSettings(bootstrap_servers=bootstrap)):
        LocalBroker(port=port_of(bootstrap)).start()
    s = KafkaSettings(bootstrap_servers=bootstrap, topic_prefix=f"bn{uuid.uuid4().hex[:6]}.")
    catalog = Catalog(s)
    create_topics(make_admin(s), catalog)
    try:
        return _report(s)
    finally:
        delete_prefixed(make_admin(s), s.topic_prefix)


def _report(s: KafkaSettings) -> int:
    catalog = Catalog(s)
    producer = make_producer(s)
    for i in range(INCIDENTS):
        producer.produce(
            catalog.name("notifications"),
            key=f"inc-{i}".encode(),
            value=encode(_note(i, "trigger", "triggered")),
        )
        producer.produce(
            catalog.name("notifications"),
            key=f"inc-{i}".encode(),
            value=encode(_note(i, "update", "acknowledged")),
        )
    producer.flush(30)
    slack = FakeSlack(latency=LATENCY_S)
    expected = INCIDENTS * 4  # post, update, thread reply... plus the post's history lookup
    with serve(slack.app()) as url, tempfile.TemporaryDirectory() as d:
        env = {
            **os.environ,
            "TOCSIN_BOOTSTRAP_SERVERS": s.bootstrap_servers,
            "TOCSIN_TOPIC_PREFIX": s.topic_prefix,
            "TOCSIN_SLACK_BASE_URL": f"{url}/api/",
            "TOCSIN_LOG_LEVEL": "warning",
        }
        log = Path(d) / "notifier.log"
        proc = subprocess.Popen(
            [sys.executable, "-m", "streams.cli.main", "run", "notifier", "--health-port", "0"],
            env=env,
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 150
            while not slack.calls and time.monotonic() < deadline:
                time.sleep(0.05)
            started = time.monotonic()
            while len(slack.calls) < expected and time.monotonic() < deadline:
                time.sleep(0.1)
            elapsed = time.monotonic() - started
        finally:
            proc.terminate()
            proc.wait(30)
    posts = sum(1 for m, a in slack.calls if m == "chat.postMessage" and not a.get("thread_ts"))
    updates = slack.methods().count("chat.update")
    deliveries = posts + updates
    print(
        f"machine: {os.cpu_count()} cores shared with the broker and other work; fake Slack "
        f"answers in {LATENCY_S * 1000:.0f} ms; {INCIDENTS:,} incidents x (trigger + update)"
    )
    print(f"| {'measure':40} | {'result':>12} |")
    print(f"|{'-' * 42}|{'-' * 14}|")
    print(f"| {'deliveries/s (posted or updated)':40} | {deliveries / elapsed:>12,.1f} |")
    print(f"| {'Slack API calls/s':40} | {len(slack.calls) / elapsed:>12,.1f} |")
    print(f"| {'top-level messages (1 per incident)':40} | {posts:>12,} |")
    print(f"| {'elapsed (s)':40} | {elapsed:>12,.1f} |")
    print("rerun: uv run python -m benchmarks notifier")
    return 0 if posts == INCIDENTS and updates == INCIDENTS else 1

"""`tocsin run notifier` on the real broker, delivering to a local fake Slack."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from harness.workers import kill9, start_notifier
from schemas import DeliveryReceipt, Notification, decode, encode
from streams.catalog import Catalog
from streams.demo.fake_slack import FakeSlack, serve
from streams.kafka import make_producer, read_topic
from streams.settings import KafkaSettings

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def fake_slack() -> Iterator[tuple[FakeSlack, str]]:
    slack = FakeSlack()
    with serve(slack.app()) as url:
        yield slack, f"{url}/api/"


def _note(kind: str, status: str, target: str = "C-ops", channel: str = "slack") -> Notification:
    nid = f"inc-abc-1/1/{kind}/{channel}:{target}"
    return Notification(notification_id=nid, incident_id="inc-abc-1", kind=kind,  # type: ignore[arg-type]
                        channel=channel, target=target, title="Memory 97% on db-01",  # type: ignore[arg-type]
                        status=status, severity="critical", priority="P1", opened_at=T0,  # type: ignore[arg-type]
                        at=T0, labels={"host": "db-01"})  # fmt: skip


def test_notifier_posts_once_updates_in_place_and_records_receipts(
    kafka_settings: KafkaSettings, topics: Catalog, fake_slack: tuple[FakeSlack, str],
    tmp_path: Path,
) -> None:  # fmt: skip
    slack, base_url = fake_slack
    slack.fail("chat.postMessage", 429, "ratelimited", {"Retry-After": "1"})
    producer = make_producer(kafka_settings)
    trigger = _note("trigger", "triggered")
    for n in (trigger, trigger, _note("trigger", "triggered", target="U9", channel="slack_dm"),
              _note("update", "acknowledged"), _note("resolve", "resolved")):  # fmt: skip
        producer.produce(topics.name("notifications"), key=b"inc-abc-1", value=encode(n))
    producer.produce(topics.name("notifications"), key=b"inc-abc-1", value=b"\x00garbage")
    assert producer.flush(10) == 0

    log = tmp_path / "notifier.log"
    proc = start_notifier(kafka_settings, log, TOCSIN_SLACK_BASE_URL=base_url)
    try:
        deadline = time.monotonic() + 60
        receipts: list[DeliveryReceipt] = []
        while time.monotonic() < deadline:
            receipts = [decode(DeliveryReceipt, v)
                        for v in read_topic(kafka_settings, topics.name("receipts"))]  # fmt: skip
            if sum(r.outcome == "delivered" for r in receipts) >= 4:
                break
            time.sleep(0.5)
    finally:
        kill9(proc)
    delivered = [r for r in receipts if r.outcome == "delivered"]
    assert len(delivered) == 4, log.read_text()[-3000:]
    assert any(r.outcome == "retrying" and r.status_code == 429 for r in receipts)
    assert len(slack.messages["C-ops"]) == 1, "one message for the incident in the channel"
    assert [m for m, _ in slack.calls].count("chat.update") == 2
    assert ("conversations.open", {"users": "U9"}) in slack.calls
    assert read_topic(kafka_settings, topics.name("deadletter")), "garbage dead-lettered"
    # the log follows each delivery back to its notification and incident
    events = [orjson.loads(line) for line in log.read_bytes().splitlines()
              if line.startswith(b"{")]  # fmt: skip
    logged = {(e["notification_id"], e["receipt_id"]) for e in events
              if e.get("event") == "notification_delivered"}  # fmt: skip
    assert logged == {(r.notification_id, r.event_id) for r in delivered}
    assert all(e["incident_id"] == "inc-abc-1" for e in events
               if e.get("event") == "notification_delivered")  # fmt: skip

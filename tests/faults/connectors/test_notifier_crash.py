"""kill -9 the notifier after Slack posted, updated or threaded and before anything was
recorded: the restarted notifier finds what Slack shows by its metadata and never shows
anything twice."""

from __future__ import annotations

import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from benchmarks.faults import notifier_kills
from harness.workers import start_notifier
from schemas import DeliveryReceipt, Notification, decode, encode
from streams.catalog import Catalog
from streams.demo.fake_slack import FakeSlack
from streams.kafka import make_producer
from streams.settings import KafkaSettings
from tests.integration.connectors.support import read_values, serve
from tests.processor_support import kill9

pytestmark = pytest.mark.faults
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _note(kind: str, status: str) -> Notification:
    return Notification(
        notification_id=f"inc-db-1/{kind}/slack:C-db",
        incident_id="inc-db-1",
        kind=kind,
        channel="slack",
        target="C-db",  # type: ignore[arg-type]
        title="Replication lag 300s on db-2",
        status=status,  # type: ignore[arg-type]
        severity="critical",
        priority="P1",
        opened_at=T0,
        at=T0,
    )


def _start(settings: KafkaSettings, base_url: str, log: Path) -> subprocess.Popen[bytes]:
    return start_notifier(settings, log, TOCSIN_SLACK_BASE_URL=base_url)


def test_crash_between_post_and_receipt_never_posts_twice(
    kafka_settings: KafkaSettings, topics: Catalog, tmp_path: Path
) -> None:
    slack = FakeSlack()
    victim: list[subprocess.Popen[bytes]] = []

    def crash_after_post(method: str, args: dict[str, Any]) -> None:
        if method == "chat.postMessage" and not args.get("thread_ts") and victim:
            kill9(victim.pop())  # Slack has the message; the notifier recorded nothing

    slack.on_call = crash_after_post
    producer = make_producer(kafka_settings)
    producer.produce(
        topics.name("notifications"), key=b"inc-db-1", value=encode(_note("trigger", "triggered"))
    )
    assert producer.flush(10) == 0
    log = tmp_path / "notifier.log"
    with serve(slack.app()) as url:
        base = f"{url}/api/"
        victim.append(_start(kafka_settings, base, log))
        deadline = time.monotonic() + 60
        while not slack.messages.get("C-db") and time.monotonic() < deadline:
            time.sleep(0.2)
        assert slack.messages.get("C-db"), log.read_text()[-2000:]
        assert not victim, "the notifier was killed right after the post"

        producer.produce(
            topics.name("notifications"),
            key=b"inc-db-1",
            value=encode(_note("update", "acknowledged")),
        )
        assert producer.flush(10) == 0
        restarted = _start(kafka_settings, base, log)
        try:
            receipts: list[DeliveryReceipt] = []
            while time.monotonic() < deadline + 30:
                receipts = [
                    decode(DeliveryReceipt, v)
                    for v in read_values(kafka_settings, topics.name("receipts"))
                ]
                if {r.notification_id for r in receipts if r.outcome == "delivered"} == {
                    "inc-db-1/trigger/slack:C-db",
                    "inc-db-1/update/slack:C-db",
                }:
                    break
                time.sleep(0.5)
        finally:
            kill9(restarted)
    # every call a person can see, counted raw: the restarted notifier found the message
    # (so posts no second one) and must not redo what that post already showed either
    tops = [a for m, a in slack.calls if m == "chat.postMessage" and not a.get("thread_ts")]
    assert len(tops) == 1, "exactly one message for the incident in the channel"
    assert len(slack.messages["C-db"]) == 1
    replies = [a["text"] for m, a in slack.calls if m == "chat.postMessage" and a.get("thread_ts")]
    updates = [a["text"] for m, a in slack.calls if m == "chat.update"]
    assert len(replies) == 1 and "acknowledged" in replies[0], (
        f"one timeline line, for the acknowledgement: {replies}"
    )
    assert len(updates) == 1 and "Acknowledged" in updates[0], (
        f"one update, to acknowledged: {updates}"
    )
    assert "conversations.history" in slack.methods(), "recovered through message metadata"
    delivered = {r.notification_id for r in receipts if r.outcome == "delivered"}
    assert delivered == {"inc-db-1/trigger/slack:C-db", "inc-db-1/update/slack:C-db"}, (
        log.read_text()[-2000:]
    )


@pytest.mark.parametrize("after", ["chat.update", "thread reply"])
def test_crash_after_an_update_reached_slack_shows_it_once(
    kafka_settings: KafkaSettings, topics: Catalog, tmp_path: Path, after: str
) -> None:
    """Killed after Slack updated the message, or after it threaded the timeline line,
    before the receipt: the restarted notifier delivers the update again and must show
    neither a second update nor a second line."""
    slack = FakeSlack()
    victim: list[subprocess.Popen[bytes]] = []

    def crash_after(method: str, args: dict[str, Any]) -> None:
        reply = method == "chat.postMessage" and bool(args.get("thread_ts"))
        hit = reply if after == "thread reply" else method == "chat.update"
        if hit and victim:
            kill9(victim.pop())  # Slack acted; the notifier recorded nothing of it

    slack.on_call = crash_after
    producer = make_producer(kafka_settings)
    for kind, status in (("trigger", "triggered"), ("update", "acknowledged")):
        producer.produce(topics.name("notifications"), key=b"inc-db-1",
                         value=encode(_note(kind, status)))  # fmt: skip
    assert producer.flush(10) == 0
    log = tmp_path / "notifier.log"
    wanted = {"inc-db-1/trigger/slack:C-db", "inc-db-1/update/slack:C-db"}
    with serve(slack.app()) as url:
        base = f"{url}/api/"
        victim.append(_start(kafka_settings, base, log))
        deadline = time.monotonic() + 60
        while victim and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not victim, f"the notifier was killed after the {after}: {log.read_text()[-2000:]}"
        restarted = _start(kafka_settings, base, log)
        delivered: set[str] = set()
        try:
            while time.monotonic() < deadline + 30 and delivered != wanted:
                time.sleep(0.5)
                delivered = {
                    r.notification_id
                    for r in (decode(DeliveryReceipt, v)
                              for v in read_values(kafka_settings, topics.name("receipts")))
                    if r.outcome == "delivered"
                }  # fmt: skip
        finally:
            kill9(restarted)
    assert delivered == wanted, log.read_text()[-2000:]
    tops = [a for m, a in slack.calls if m == "chat.postMessage" and not a.get("thread_ts")]
    replies = [a["text"] for m, a in slack.calls if m == "chat.postMessage" and a.get("thread_ts")]
    updates = [a["text"] for m, a in slack.calls if m == "chat.update"]
    assert len(tops) == 1, "exactly one message for the incident in the channel"
    assert len(replies) == 1 and "acknowledged" in replies[0], f"one timeline line: {replies}"
    assert len(updates) == 1 and "Acknowledged" in updates[0], f"one update: {updates}"
    assert "conversations.replies" in slack.methods(), "what Slack shows was read back"


def test_kill9_at_random_moments_sends_what_an_uninterrupted_run_sends(
    broker: str, tmp_path: Path
) -> None:
    row = notifier_kills.run(broker, trials=3, tmp=tmp_path, max_delay=5.0, incidents=15)
    assert row.exits == 0, row.notes
    assert row.lost == 0 and row.duplicated == 0, row.notes
    assert row.ok, row.notes

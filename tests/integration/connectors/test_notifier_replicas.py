"""Two notifier replicas in one consumer group, one killed with SIGKILL in the middle of
a delivery, then restarted (another rebalance), while notifications keep coming: every
notification shows exactly once in Slack, and every update edits the incident's first
message, also for incidents whose message is far down a busy channel."""

from __future__ import annotations

import subprocess
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from confluent_kafka import ConsumerGroupState
from confluent_kafka.admin import NewTopic

from benchmarks.faults.harness import start
from harness.workers import kill9
from schemas import DeliveryReceipt, Notification, decode, encode
from streams.catalog import Catalog
from streams.demo.fake_slack import FakeSlack, serve
from streams.kafka import make_admin, make_producer
from streams.settings import KafkaSettings
from tests.integration.connectors.support import read_keyed, read_values

T0 = datetime(2026, 1, 1, tzinfo=UTC)
# more incident messages than the newest 200 of the channel: an incident's message must
# be found by what was recorded, not by reading the channel's recent history
INCIDENTS = 260
CHANNEL = "C-ops"


def _note(i: int, step: int, kind: str, status: str, channel: str = "slack",
          target: str = CHANNEL) -> Notification:  # fmt: skip
    inc = f"inc-{i:04d}"
    return Notification(
        notification_id=f"{inc}/{step}/{kind}/{channel}:{target}", incident_id=inc,
        kind=kind, channel=channel, target=target, title=f"Disk 97% on db-{i}",  # type: ignore[arg-type]
        status=status, severity="critical", priority="P1", opened_at=T0,  # type: ignore[arg-type]
        at=T0 + timedelta(seconds=step),
    )  # fmt: skip


def _produce(settings: KafkaSettings, topics: Catalog, notes: list[Notification]) -> None:
    producer = make_producer(settings)
    for n in notes:
        producer.produce(topics.name("notifications"), key=n.incident_id.encode(),
                         value=encode(n))  # fmt: skip
        producer.poll(0)
    assert producer.flush(30) == 0


def _group(settings: KafkaSettings, members: int, timeout: float,
           without: frozenset[str] = frozenset()) -> set[str]:  # fmt: skip
    """The member ids once the group is stable with ``members`` members, none of them in
    ``without`` (a killed one lingers until its session times out), each holding a
    partition; empty when that does not happen within ``timeout``."""
    admin = make_admin(settings)
    group = f"{settings.topic_prefix}notifier"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            [desc] = [f.result() for f in admin.describe_consumer_groups([group]).values()]
        except Exception:
            desc = None
        if (desc is not None and desc.state == ConsumerGroupState.STABLE
                and len(desc.members) == members
                and not {m.member_id for m in desc.members} & without
                and all(m.assignment.topic_partitions for m in desc.members)):  # fmt: skip
            return {m.member_id for m in desc.members}
        time.sleep(0.5)
    return set()


def _incident(call: dict[str, Any]) -> str:
    return str(call["metadata"]["event_payload"]["incident_id"])


def _delivered(settings: KafkaSettings, topics: Catalog) -> set[str]:
    receipts = [decode(DeliveryReceipt, v) for v in read_values(settings, topics.name("receipts"))]
    return {r.notification_id for r in receipts if r.outcome == "delivered"}


def test_two_replicas_a_kill9_and_rebalances_show_every_notification_once(
    kafka_settings: KafkaSettings, topics: Catalog, tmp_path: Path
) -> None:
    slack = FakeSlack()
    killed: dict[str, subprocess.Popen[bytes]] = {}
    replicas: dict[str, subprocess.Popen[bytes]] = {}
    updates_by_a = 0

    def kill_a_mid_delivery(method: str, args: dict[str, Any]) -> None:
        # Slack applied replica a's update; a dies before its thread line, its receipt
        # and its offsets: the partition's next owner takes the update from there
        nonlocal updates_by_a
        if method == "chat.update" and slack.callers[-1] == "a" and "a" in replicas:
            updates_by_a += 1
            if updates_by_a == 15:
                killed["a"] = replicas.pop("a")
                kill9(killed["a"])

    slack.on_call = kill_a_mid_delivery
    triggers = [_note(i, 0, "trigger", "triggered") for i in range(INCIDENTS)]
    pages = [_note(i, 1, "trigger", "triggered", "slack_dm", f"U{i % 3}")
             for i in range(0, INCIDENTS, 4)]  # fmt: skip
    updates = [_note(i, 2, "update", "acknowledged") for i in range(INCIDENTS)]
    resolves = [_note(i, 3, "resolve", "resolved") for i in range(INCIDENTS)]
    wanted = {n.notification_id for n in (*triggers, *pages, *updates, *resolves)}
    log = tmp_path / "notifiers.log"
    delivered: set[str] = set()
    with serve(slack.app()) as url:

        def replica(name: str) -> subprocess.Popen[bytes]:
            return start("notifier", ["--health-port", "0"], kafka_settings, log,
                         TOCSIN_SLACK_BASE_URL=f"{url}/{name}/api/")  # fmt: skip

        try:
            replicas["a"], replicas["b"] = replica("a"), replica("b")
            first = _group(kafka_settings, 2, 120)
            assert first, log.read_text()[-3000:]
            _produce(kafka_settings, topics, [*triggers, *pages])
            deadline = time.monotonic() + 240
            while len(slack.messages.get(CHANNEL, [])) < INCIDENTS:
                assert time.monotonic() < deadline, log.read_text()[-3000:]
                time.sleep(0.5)

            _produce(kafka_settings, topics, updates)
            while "a" not in killed:
                assert time.monotonic() < deadline, "replica a was never killed mid-delivery"
                time.sleep(0.2)
            # b takes over a's partitions once a's session times out
            survivor = _group(kafka_settings, 1, 120)
            assert survivor and survivor < first, log.read_text()[-3000:]
            _produce(kafka_settings, topics, resolves[: INCIDENTS // 2])
            replicas["a"] = replica("a2")  # back: partitions move again, under load
            assert _group(kafka_settings, 2, 120, frozenset(first - survivor))
            _produce(kafka_settings, topics, resolves[INCIDENTS // 2 :])
            deadline = time.monotonic() + 300
            while delivered != wanted and time.monotonic() < deadline:
                time.sleep(1.0)
                delivered = _delivered(kafka_settings, topics)
        finally:
            for proc in replicas.values():
                kill9(proc)
    assert delivered == wanted, (
        f"{len(wanted - delivered)} never delivered: {log.read_text()[-3000:]}"
    )

    # raw calls at Slack: a duplicate of anything would show here
    posts = [a for m, a in slack.calls if m == "chat.postMessage" and not a.get("thread_ts")]
    firsts: dict[str, str] = {}  # incident -> ts of its first message in the channel
    for shown in reversed(slack.messages[CHANNEL]):  # oldest first
        firsts.setdefault(shown["metadata"]["event_payload"]["incident_id"], shown["ts"])
    per_incident = Counter(a["metadata"]["event_payload"]["incident_id"] for a in posts
                           if a["channel"] == CHANNEL)  # fmt: skip
    assert len(per_incident) == INCIDENTS and set(per_incident.values()) == {1}, (
        f"incidents posted more than once: {[i for i, c in per_incident.items() if c > 1][:10]}"
    )
    dms = Counter(a["metadata"]["event_payload"]["notification_id"] for a in posts
                  if a["channel"] != CHANNEL)  # fmt: skip
    assert dms == Counter(n.notification_id for n in pages), "each page DMed exactly once"

    edits = [a for m, a in slack.calls if m == "chat.update"]
    edited = Counter(a["metadata"]["event_payload"]["updated_for"] for a in edits)
    assert edited == Counter(n.notification_id for n in (*updates, *resolves)), (
        f"updates applied other than once: {[k for k, c in edited.items() if c != 1][:10]}"
    )
    wrong = [a["metadata"]["event_payload"]["incident_id"] for a in edits
             if (a["channel"], a["ts"]) != (CHANNEL, firsts[a["metadata"]["event_payload"]
                                                           ["incident_id"]])]  # fmt: skip
    assert not wrong, f"updates that did not edit the incident's first message: {wrong[:10]}"

    lines = [a for m, a in slack.calls if m == "chat.postMessage" and a.get("thread_ts")]
    threaded = Counter(a["metadata"]["event_payload"]["notification_id"] for a in lines)
    assert threaded == Counter(n.notification_id for n in (*updates, *resolves)), (
        f"timeline lines other than once: {[k for k, c in threaded.items() if c != 1][:10]}"
    )
    astray = [a for a in lines if a["thread_ts"] != firsts[_incident(a)]]
    assert not astray, "every timeline line in the thread of the incident's first message"


def test_an_upgraded_notifier_keeps_editing_the_messages_the_single_topic_layout_recorded(
    kafka_settings: KafkaSettings, topics: Catalog, tmp_path: Path
) -> None:
    slack = FakeSlack()
    trigger, update = _note(1, 0, "trigger", "triggered"), _note(1, 2, "update", "acknowledged")
    posted_for = {"incident_id": "inc-0001", "notification_id": trigger.notification_id}
    meta = {"event_type": "tocsin_incident", "event_payload": posted_for}
    slack.messages[CHANNEL] = [{"ts": "1700000000.000001", "text": "old", "metadata": meta}]
    # the channel is busy: the incident's message is not among its newest 1,000
    slack.messages[CHANNEL][:0] = [{"ts": f"1700000001.{i:06d}", "text": "other"}
                                   for i in range(1200)]  # fmt: skip
    legacy = kafka_settings.topic("notifier-state")
    admin = make_admin(kafka_settings)
    for f in admin.create_topics([NewTopic(legacy, 3, 1, config={"cleanup.policy": "compact"})]
                                 ).values():  # fmt: skip
        f.result(30)
    producer = make_producer(kafka_settings)
    producer.produce(legacy, key=b"msg:inc-0001|C-ops", value=b"C-ops/1700000000.000001")
    producer.produce(legacy, key=f"done:{trigger.notification_id}".encode(),
                     value=str(int(time.time())).encode())  # fmt: skip
    assert producer.flush(30) == 0
    _produce(kafka_settings, topics, [trigger, update])
    log = tmp_path / "notifier.log"
    with serve(slack.app()) as url:
        proc = start("notifier", ["--health-port", "0"], kafka_settings, log,
                     TOCSIN_SLACK_BASE_URL=f"{url}/api/")  # fmt: skip
        try:
            deadline = time.monotonic() + 120
            while update.notification_id not in _delivered(kafka_settings, topics):
                assert time.monotonic() < deadline, log.read_text()[-3000:]
                time.sleep(0.5)
        finally:
            kill9(proc)
    assert [m for m in slack.methods() if m.startswith("chat.")] == [
        "chat.update",
        "chat.postMessage",
    ], "the trigger was delivered before the upgrade; the update edits its message"
    [edit] = [a for m, a in slack.calls if m == "chat.update"]
    assert (edit["channel"], edit["ts"]) == (CHANNEL, "1700000000.000001")
    recorded = dict(read_keyed(kafka_settings, topics.name("notifier-partition-state")))
    assert recorded[b"msg:inc-0001|C-ops"] == b"C-ops/1700000000.000001", "carried over"

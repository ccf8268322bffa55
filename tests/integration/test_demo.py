"""The short variant of `make demo`: every injected incident is detected, paged once
per target, and resolved."""

from __future__ import annotations

import uuid
from collections import Counter
from pathlib import Path

from schemas import IncidentEvent, Notification, decode
from streams.demo.pipeline import Demo
from streams.kafka import read_topic
from streams.settings import KafkaSettings


def test_demo_story_end_to_end(broker: str, tmp_path: Path) -> None:
    settings = KafkaSettings(bootstrap_servers=broker, topic_prefix=f"d{uuid.uuid4().hex[:8]}.")
    lines: list[str] = []
    demo = Demo(settings, tmp_path, speed=30, echo=lines.append)
    try:
        code = demo.run()
    finally:
        demo.stop_workers()
    output = "\n".join(lines)
    assert code == 0, output[-4000:]
    assert output.count(" detected, notified") == 5, output[-2000:]

    notes = [
        decode(Notification, v) for v in read_topic(settings, demo.catalog.name("notifications"))
    ]
    triggers = Counter((n.incident_id, n.channel, n.target) for n in notes if n.kind == "trigger")
    assert triggers, "somebody was paged"
    assert max(triggers.values()) == 1, "one first page per incident and target"
    ledger = [decode(IncidentEvent, v)
              for v in read_topic(settings, demo.catalog.name("incident-events"))]  # fmt: skip
    opened = {e.incident_id for e in ledger if e.kind == "opened"}
    resolved = {e.incident_id for e in ledger if e.kind == "resolved"}
    assert opened
    assert opened <= resolved, "every incident was resolved"
    assert any(e.kind == "acknowledged" for e in ledger), "the responder's ack was applied"
    assert any(e.kind == "escalated" for e in ledger), "an unacknowledged incident escalated"

    # what Slack itself received (the fake the demo runs without a token): one message
    # per incident and channel, and one DM per page
    assert demo.slack is not None
    incident_posts = Counter(
        (channel, m["metadata"]["event_payload"]["incident_id"])
        for channel, msgs in demo.slack.messages.items()
        for m in msgs
        if m["metadata"] and m["metadata"]["event_type"] == "tocsin_incident"
    )
    assert incident_posts and max(incident_posts.values()) == 1, incident_posts
    dm_pages = Counter(
        m["metadata"]["event_payload"]["notification_id"]
        for msgs in demo.slack.messages.values()
        for m in msgs
        if m["metadata"] and m["metadata"]["event_type"] == "tocsin_page"
    )
    assert dm_pages and max(dm_pages.values()) == 1, dm_pages
    assert "SLACK   post" in output, "the demo shows what was posted"

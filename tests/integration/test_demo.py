"""The short variant of `make demo`: the story the fault plan promises, on every run.

Every injected fault is detected and pages once (the CPU warning that rides along with
the critical is inhibited), the incidents planned to escalate escalate and the others
do not, the live lines carry scenario time, and the summary ends with MTTA/MTTR and says
that PagerDuty was printed, not sent."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from pathlib import Path

import pytest

from schemas import Alert, IncidentEvent, Notification, decode
from streams.demo.pipeline import Demo
from streams.demo.workload import FAULTS
from streams.kafka import make_admin, read_topic
from streams.settings import KafkaSettings


def test_demo_story_end_to_end(
    broker: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("PAGERDUTY_ROUTING_KEYS", "PAGERDUTY_ROUTING_KEYS_FILE", "SLACK_BOT_TOKEN",
                 "SLACK_BOT_TOKEN_FILE"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    settings = KafkaSettings(bootstrap_servers=broker, topic_prefix=f"d{uuid.uuid4().hex[:8]}.")
    lines: list[str] = []
    demo = Demo(settings, tmp_path, speed=30, echo=lines.append)
    try:
        code = demo.run()
    finally:
        demo.stop_workers()
    try:
        _check_story(demo, settings, "\n".join(lines), lines, code)
    finally:
        cleaned = demo.delete_topics()
    assert cleaned.startswith("deleted this run's "), cleaned
    assert _topics_left(settings) == [], "the demo leaves no topic behind"


def _topics_left(settings: KafkaSettings) -> list[str]:
    """This run's topics still listed; deletion reaches every broker's metadata soon."""
    admin, deadline = make_admin(settings), time.monotonic() + 30
    while True:
        left = [t for t in admin.list_topics(timeout=30).topics
                if t.startswith(settings.topic_prefix)]  # fmt: skip
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.5)  # polling interval of a bounded wait


def _check_story(demo: Demo, settings: KafkaSettings, output: str, lines: list[str],
                 code: int) -> None:  # fmt: skip
    assert code == 0, output[-4000:]
    story = output[output.index("=== the story") :]
    assert story.count("(as planned)") == len(FAULTS), story

    # the time scale is explained before the fault plan, and live lines read against it
    assert "time scale: the scenario runs 30x faster" in output
    assert "every timer divided by 30" in output
    # CPU at 94% from 01:00 holds `for: 5m` after the first full 1-minute window: 07:00
    assert "07:00 ALERT   critical CPU" in output, output[:3000]
    assert "07:00 ALERT   warning  CPU" in output, "the warning fires too ..."
    assert "INHIBIT CPU" in output and "inhibited by cpu_saturation_critical" in output

    notes = [
        decode(Notification, v) for v in read_topic(settings, demo.catalog.name("notifications"))
    ]
    triggers = [n for n in notes if n.kind == "trigger"]
    assert max(Counter((n.incident_id, n.channel, n.target) for n in triggers).values()) == 1
    # one fault, one page: a single incident pages for web-03, the critical one
    cpu_pages = {(n.incident_id, n.labels["alertname"]) for n in triggers
                 if n.labels.get("host") == "web-03"}  # fmt: skip
    assert len(cpu_pages) == 1 and next(iter(cpu_pages))[1] == "cpu_saturation_critical"
    assert not [n for n in notes if n.labels.get("alertname") == "cpu_high_warning"]
    alerts = [decode(Alert, v) for v in read_topic(settings, demo.catalog.name("alerts"))]
    assert any(a.rule == "cpu_high_warning" and a.status == "firing" for a in alerts)

    ledger = [decode(IncidentEvent, v)
              for v in read_topic(settings, demo.catalog.name("incident-events"))]  # fmt: skip
    opened = {e.incident_id for e in ledger if e.kind == "opened"}
    assert opened and opened <= {e.incident_id for e in ledger if e.kind == "resolved"}
    rule_of = {n.incident_id: n.labels["alertname"] for n in triggers}
    escalated = {rule_of[e.incident_id] for e in ledger if e.kind == "escalated"}
    acked = {rule_of[e.incident_id] for e in ledger if e.kind == "acknowledged"}
    planned = {o: {f.expect_rule for f in FAULTS if f.outcome == o}
               for o in ("escalated", "acknowledged")}  # fmt: skip
    assert escalated == planned["escalated"], output[-4000:]
    assert acked == planned["acknowledged"]

    # the summary: deliveries say what was printed rather than sent, and MTTA/MTTR end it
    assert "pagerduty: " in output
    assert "printed to the notifier's log, NOT sent: no PAGERDUTY_ROUTING_KEYS" in output
    assert lines[-1].startswith("MTTA ") and " MTTR " in lines[-1], lines[-3:]
    assert f"over all {len(opened)} resolved incidents" in lines[-1]

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

"""kill -9 an agents worker mid-escalation: on restart it resumes at the right level."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from schemas import encode
from streams.catalog import Catalog
from streams.kafka import make_producer
from streams.settings import KafkaSettings
from tests.integration.agents.test_agents_worker import (
    _alert,
    _notifications,
    _wait,
    start_agents,
)
from tests.processor_support import kill9


@pytest.mark.faults
def test_escalation_resumes_after_kill9(
    kafka_settings: KafkaSettings, topics: Catalog, tmp_path: Path
) -> None:
    config = tmp_path / "config.yaml"
    text = Path("examples/config/tocsin.yaml").read_text()
    config.write_text(
        text.replace("timeout: 5m", "timeout: 8s").replace("timeout: 10m", "timeout: 1h")
    )
    log = tmp_path / "agents.log"
    worker = start_agents(kafka_settings, config, log)
    producer = make_producer(kafka_settings)
    producer.produce(topics.name("alerts"), key=b"cpu-web-03", value=encode(_alert("firing")))
    assert producer.flush(10) == 0

    def ids(kind: str) -> set[str]:
        return {n.notification_id for n in _notifications(kafka_settings, topics) if n.kind == kind}

    _wait(lambda: ids("trigger"), 90, "the first page", log, worker)
    paged_at = datetime.now(UTC)
    kill9(worker)  # mid-escalation: level 1 paged, level 2 due in 8 s
    time.sleep(3)
    worker = start_agents(kafka_settings, config, log)
    try:
        _wait(lambda: ids("escalate"), 90, "escalation after the restart", log, worker)
    finally:
        kill9(worker)
    notes = _notifications(kafka_settings, topics)
    escalations = [n for n in notes if n.kind == "escalate"]
    assert {n.target for n in escalations} == {"U0BOB", "platform-pagerduty"}, "level 2, once"
    assert len(ids("escalate")) == 2, "one notification per level-2 target"
    assert len(ids("trigger")) == 2, "level 1 was not paged again after the restart"
    waited = min(n.at for n in escalations) - paged_at
    assert waited.total_seconds() >= 7, "the escalation timeout was honoured across the crash"

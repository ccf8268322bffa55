"""A batch the broker does not acknowledge in time says where its records wait."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from structlog.testing import capture_logs

from streams.agents import outbox
from streams.agents.outbox import Acks
from streams.kafka import KafkaWait


def test_a_held_batch_logs_where_its_records_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(outbox, "ACK_PATIENCE_S", 0.05)
    where = {"idempotence": "Assigned", "held": {"t[1]": {"unsent": 0, "in_flight": 2}}}
    acks = Acks(lambda _: 0, KafkaWait("agents/outbox"), lambda: where)
    acks._sent = 2  # two records enqueued, never acknowledged

    async def wait_a_while() -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(acks.all(), 0.3)

    with capture_logs() as logs:
        asyncio.run(wait_a_while())
    held = [e for e in logs if e["event"] == "acknowledgements_held"]
    assert len(held) == 1, "once per REPORT_EVERY_S"
    assert held[0]["records"] == 2 and held[0]["held"] == where["held"]
    assert held[0]["idempotence"] == "Assigned"

"""The gap filler's lookups get a new Kafka client when the old one keeps failing.

After a broker restart the filler's consumer was seen answering "unknown partition"
for minutes while every other client had recovered, and the agents' batch, waiting on
the lookup, decided nothing: no incident opened, nobody paged. A client that fails
every lookup stands in for it here."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from streams.agents import gaps
from streams.agents.gaps import GapFiller
from streams.settings import KafkaSettings


class Client:
    made: list[Client] = []

    def __init__(self, _: dict[str, Any]) -> None:
        self.stuck = not Client.made  # the first client never recovers; its successor works
        self.closed = False
        Client.made.append(self)

    def committed(self, tps: list[TopicPartition], timeout: float) -> list[TopicPartition]:
        if self.stuck:
            raise KafkaException(KafkaError(KafkaError._UNKNOWN_PARTITION, "Unknown partition"))
        return [TopicPartition(tp.topic, tp.partition, 7) for tp in tps]

    def close(self) -> None:
        self.closed = True


def test_a_lookup_that_keeps_failing_gets_a_new_client(monkeypatch: pytest.MonkeyPatch) -> None:
    Client.made = []
    monkeypatch.setattr(gaps, "Consumer", Client)
    monkeypatch.setattr(gaps, "RETRY_S", 0.01)
    filler = GapFiller(KafkaSettings(), "agents")
    filler.renewal.after_s = 0.1
    # the committed offset is 7: a record at 7 is the next expected one, nothing skipped
    found = asyncio.run(asyncio.wait_for(filler.missing("work", 0, 7), timeout=10))
    assert found == []
    assert len(Client.made) == 2 and Client.made[0].closed

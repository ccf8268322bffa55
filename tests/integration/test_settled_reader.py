"""The tests' readers of committed output wait out a transaction left open, instead of
stopping at it: a processor killed mid-transaction under an instance id nobody takes
up again holds back everything committed after it (a fault test once counted 3,360
records lost that were only behind such a transaction)."""

from __future__ import annotations

import threading

import pytest
from confluent_kafka import Consumer, Producer

from harness.settled import settled_end
from streams.catalog import Catalog
from streams.settings import KafkaSettings


def _committed_reader(settings: KafkaSettings) -> Consumer:
    return Consumer(settings.client_config() | {"group.id": "settled-test-unused",
                                                "isolation.level": "read_committed"})  # fmt: skip


def test_the_end_is_read_once_the_open_transaction_ended(
    kafka_settings: KafkaSettings, topics: Catalog
) -> None:
    topic = topics.name("alerts")
    plain = Producer(kafka_settings.client_config())
    plain.produce(topic, b"before", partition=0)
    assert plain.flush(10) == 0
    zombie = Producer(kafka_settings.client_config()
                      | {"transactional.id": f"{kafka_settings.topic_prefix}zombie"})  # fmt: skip
    zombie.init_transactions(10)
    zombie.begin_transaction()
    zombie.produce(topic, b"in the open transaction", partition=0)
    assert zombie.flush(10) == 0
    plain.produce(topic, b"committed after it", partition=0)
    assert plain.flush(10) == 0

    reader = _committed_reader(kafka_settings)
    try:
        with pytest.raises(TimeoutError, match=r"\[0\]: a transaction open"):
            settled_end(reader, kafka_settings, topic, 0, timeout=1)
        ends: list[tuple[int, int]] = []
        waiting = threading.Thread(target=lambda: ends.append(
            settled_end(reader, kafka_settings, topic, 0, timeout=60)))  # fmt: skip
        waiting.start()
        zombie.abort_transaction(10)
        waiting.join(70)
        # before, the open transaction, after, and the abort's marker
        assert ends == [(0, 4)]
    finally:
        reader.close()

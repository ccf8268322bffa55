"""Where a producer's unacknowledged records wait, read from librdkafka's statistics on
the real broker: the partitions that hold them and the leader each goes to."""

from __future__ import annotations

import time

import pytest
from confluent_kafka.admin import NewTopic

from streams import producer_stats
from streams.kafka import make_admin, make_producer
from streams.producer_stats import ProducerStats
from streams.settings import KafkaSettings


def test_records_held_back_are_named_with_their_partition_and_leader(
    kafka_settings: KafkaSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(producer_stats, "STATS_EVERY_S", 1)
    topic = f"{kafka_settings.topic_prefix}held"
    admin = make_admin(kafka_settings)  # kept: the future needs its client alive
    admin.create_topics([NewTopic(topic, 2, 1)])[topic].result(30)
    stats = ProducerStats()
    # a linger longer than the test: the records stay in the producer until the flush
    producer = make_producer(kafka_settings, **{"linger.ms": 60_000, **stats.conf()})
    for _ in range(3):
        producer.produce(topic, b"x", partition=1)
    deadline = time.monotonic() + 20
    while not stats.waiting().get("held") and time.monotonic() < deadline:
        producer.poll(0.2)
    where = stats.waiting()
    assert where["held"] == {
        f"{topic}[1]": {"unsent": 3, "in_flight": 0, "leader": 1, "leader_epoch": 0}
    }
    assert where["idempotence"] == "Assigned"
    assert producer.flush(30) == 0
    stats.latest = None
    while stats.latest is None and time.monotonic() < deadline + 10:
        producer.poll(0.2)
    assert stats.waiting()["held"] == {}

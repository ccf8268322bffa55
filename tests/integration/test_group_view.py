"""Whether the cluster's coordinator holds a static member, asked of the real broker."""

from __future__ import annotations

import time

from streams.catalog import Catalog
from streams.counted_nodes import count
from streams.kafka import make_consumer
from streams.runtime.group_view import held_by_cluster
from streams.settings import KafkaSettings


def test_a_static_member_in_its_group_is_held_and_another_instance_is_not(
    kafka_settings: KafkaSettings, topics: Catalog
) -> None:
    found = count(kafka_settings)
    assert found is not None
    group = f"{kafka_settings.topic_prefix}view"
    consumer = make_consumer(kafka_settings, group, **{"group.instance.id": "view-1",
                                                       "session.timeout.ms": 10_000})  # fmt: skip
    try:
        consumer.subscribe([topics.name("metrics")])
        deadline = time.monotonic() + 60
        while not consumer.assignment() and time.monotonic() < deadline:
            consumer.poll(0.2)
        assert consumer.assignment(), "joined its group"
        assert held_by_cluster(kafka_settings, found, group, "view-1") is True
        assert held_by_cluster(kafka_settings, found, group, "view-2") is False
        assert held_by_cluster(kafka_settings, found, f"{group}-none", "view-1") is False
    finally:
        consumer.close()

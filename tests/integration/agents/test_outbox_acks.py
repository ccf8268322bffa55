"""`Acks.all()` is the agents' only word that Kafka has a batch: it must wait for every
record, and fail when the broker refuses one, or decide would write state whose effects
never landed."""

from __future__ import annotations

import asyncio
import os

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import NewTopic

from streams.agents.outbox import Outbox
from streams.kafka import make_admin
from streams.settings import KafkaSettings
from tests.integration.agents.test_agents_worker import read_topic


def _small_topic(settings: KafkaSettings) -> str:
    """A topic whose broker refuses record batches over 64 KB (the client's own limit is
    1 MB, so the refusal comes back as a delivery error, not at enqueue)."""
    name = f"{settings.topic_prefix}outbox-small"
    new = NewTopic(name, num_partitions=1, replication_factor=1,
                   config={"max.message.bytes": "65536"})  # fmt: skip
    admin = make_admin(settings)  # held until the creation is answered
    admin.create_topics([new])[name].result(30)
    return name


def test_all_waits_for_every_record_and_raises_a_refusal(kafka_settings: KafkaSettings) -> None:
    topic = _small_topic(kafka_settings)
    big = os.urandom(500_000)  # incompressible: lz4 cannot bring it under the limit

    async def produce() -> None:
        outbox = Outbox(kafka_settings)
        ok = outbox.acks()
        for i in range(500):
            await outbox.send(ok, topic, b"k", b"v%d" % i)
        await ok.all()  # returns only once Kafka has all 500
        refused = outbox.acks()
        await outbox.send(refused, topic, b"k", b"small")
        await outbox.send(refused, topic, b"k", big)
        with pytest.raises(KafkaException, match="MSG_SIZE_TOO_LARGE"):
            await refused.all()
        outbox.close()

    asyncio.run(produce())
    values = read_topic(kafka_settings, topic)[0]
    assert values[:500] == [b"v%d" % i for i in range(500)]
    assert big not in values

"""The router puts alert bundles on partitions it computes; commands, receipts and timer
ticks of the same group are placed by the producer's partitioner. Both must agree, or a
group's events would be decided by two owners."""

from __future__ import annotations

import asyncio

from processors.incidents.ledger import group_id
from streams.agents.decide import partition_of
from streams.agents.outbox import Outbox
from streams.catalog import Catalog
from streams.settings import KafkaSettings
from tests.integration.agents.test_agents_worker import read_topic


def test_computed_partitions_are_the_producers(kafka_settings: KafkaSettings,
                                               topics: Catalog) -> None:  # fmt: skip
    topic = topics.name("incident-work")
    partitions = topics.get("incident-work").partitions
    keys = [group_id(f"root|alertname=cpu,service=svc-{i}").encode() for i in range(200)]

    async def produce() -> None:
        outbox = Outbox(kafka_settings)
        acks = outbox.acks()
        for key in keys:
            await outbox.send(acks, topic, key, key)  # the partitioner decides
        await acks.all()
        outbox.close()

    asyncio.run(produce())
    placed = {v: p for p, vs in read_topic(kafka_settings, topic).items() for v in vs}
    assert len(placed) == len(keys)
    assert {k: partition_of(k, partitions) for k in keys} == {k: placed[k] for k in keys}
    assert len(set(placed.values())) == partitions  # not all on one partition by accident

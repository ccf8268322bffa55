"""The stateless first hop: alerts, commands and receipts re-keyed onto `incident-work`.

It holds no state, so it needs none of faust's tables or changelogs, and faust's
per-record consumer path (two asyncio tasks per record, then the stream machinery)
was half of the worker's CPU per transition. It runs as a task of the agents worker
with its own confluent-kafka consumer group (`<app id>-router`), reading what
librdkafka prefetched in batches without blocking the event loop.

It runs on the runtime's at-least-once loop (streams/runtime/at_least_once.py), in
its cooperative form (the consumer is never waited on: the event loop is faust's): a
batch's outputs (re-keyed records, dead letters, broadcasts) are acknowledged by Kafka
before its offsets are committed, a graceful rebalance replays nothing, and a kill -9
replays at most the last batches, which `decide` recognises by event id (a replayed
re-keying is a new offset with an old event id).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from prometheus_client import Gauge

from streams.runtime.at_least_once import AtLeastOnceLoop
from streams.runtime.records import TP, Assigned, Run
from streams.runtime.worker import Outputs
from streams.settings import KafkaSettings

Pending = list[Awaitable[Any]]
# routes a batch of (topic, value) and returns once Kafka acknowledged all it wrote
Handler = Callable[[Sequence[tuple[str, bytes]]], Awaitable[None]]


class Router:
    def __init__(self, settings: KafkaSettings, group_id: str, topics: Sequence[str],
                 handle: Handler, *, batch: int = 2000, idle: float = 0.005,
                 lag: Gauge | None = None) -> None:  # fmt: skip
        self.topics = list(topics)
        self._handle = handle
        # the agents' input lag (alerts, commands, receipts) is this group's lag
        self.loop = AtLeastOnceLoop(
            settings, self, name="agents/router", group_id=group_id, producer=None, lag=lag,
            # a crashed worker's partitions move after 10 s, as with the faust group
            consumer_conf={"session.timeout.ms": 10_000, "heartbeat.interval.ms": 2_000},
            batch=batch, block_s=0, idle_s=idle, commit_async=True,
        )  # fmt: skip
        self.wait = self.loop.wait

    def on_assign(self, partitions: list[Assigned]) -> None:
        return None  # stateless

    def on_revoke(self, partitions: list[TP]) -> None:
        return None

    async def process(self, runs: list[Run], out: Outputs) -> None:
        await self._handle([(topic, rec.value() or b"") for (topic, _), run in runs
                            for rec in run])  # fmt: skip

    async def run(self) -> None:
        await self.loop.run()

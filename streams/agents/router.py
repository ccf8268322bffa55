"""The stateless first hop: alerts, commands and receipts re-keyed onto `incident-work`.

It holds no state, so it needs none of faust's tables or changelogs, and faust's
per-record consumer path (two asyncio tasks per record, then the stream machinery)
was half of the worker's CPU per transition. It runs as a task of the agents worker
with its own confluent-kafka consumer group (`<app id>-router`), reading what
librdkafka prefetched in batches without blocking the event loop.

At-least-once: a batch's outputs (re-keyed records, dead letters, broadcasts) are
acknowledged by Kafka before its offsets are committed, and the consumed positions
are committed synchronously when partitions are revoked between batches, so a
graceful rebalance replays nothing; a stop in the middle of a batch commits nothing
of it, and a kill -9 replays at most the last batches, which `decide` recognises by
event id (a replayed re-keying is a new offset with an old event id).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Any

import structlog
from confluent_kafka import Consumer, KafkaException, TopicPartition
from prometheus_client import Gauge

from streams.kafka import KafkaWait, make_consumer
from streams.metrics import LagReporter
from streams.settings import KafkaSettings

log = structlog.get_logger(__name__)
Pending = list[Awaitable[Any]]
PROBE_EVERY_S = 5.0
# routes a batch of (topic, value) and returns once Kafka acknowledged all it wrote
Handler = Callable[[Sequence[tuple[str, bytes]]], Awaitable[None]]


class Router:
    def __init__(self, settings: KafkaSettings, group_id: str, topics: Sequence[str],
                 handle: Handler, *, batch: int = 2000, idle: float = 0.005,
                 lag: Gauge | None = None) -> None:  # fmt: skip
        self._settings, self._group, self._topics = settings, group_id, list(topics)
        self._lag_gauge = lag
        self._handle, self._batch, self._idle = handle, batch, idle
        self.assigned = 0  # partitions this worker routes now
        self._inflight = False  # a batch consumed and not yet acknowledged
        self.wait = KafkaWait("agents/router")
        self._probed_at = 0.0

    def _open(self) -> Consumer:
        consumer = make_consumer(self._settings, self._group, **{
            # a crashed worker's partitions move after 10 s, as with the faust group
            "session.timeout.ms": 10_000, "heartbeat.interval.ms": 2_000,
        })  # fmt: skip

        def on_assign(c: Consumer, tps: list[TopicPartition]) -> None:
            self.assigned = len(tps)

        def on_revoke(c: Consumer, tps: list[TopicPartition]) -> None:
            if self._inflight or self.wait.stalled:
                # cut short, or the broker away (a commit would block): replayed instead
                self.assigned = 0
                return
            # between batches everything consume() returned was routed and acknowledged
            try:
                c.commit(asynchronous=False)
            except KafkaException as exc:  # nothing consumed yet, or the group moved on
                log.info("router_commit_on_revoke", error=str(exc)[:300])
            self.assigned = 0

        consumer.subscribe(self._topics, on_assign=on_assign, on_revoke=on_revoke)
        return consumer

    async def run(self) -> None:
        consumer = self._open()
        # the agents' input lag (alerts, commands, receipts) is this group's lag
        lag = LagReporter(consumer, self._lag_gauge) if self._lag_gauge is not None else None
        try:
            while True:
                if lag is not None:
                    lag.maybe_report()
                records = consumer.consume(num_messages=self._batch, timeout=0)
                if not records:
                    if self.wait.stalled:
                        await self._probe(consumer)
                    await asyncio.sleep(self._idle)
                    continue
                self._inflight = True
                batch = []
                for rec in records:
                    if rec.error():
                        # the broker away: librdkafka reconnects; said once a while
                        self.wait.waiting("the broker (fetch)", rec.error())
                        continue
                    batch.append((rec.topic() or "", rec.value() or b""))
                if batch:
                    self.wait.progressed()
                await self._handle(batch)  # acknowledged before the offsets move
                self._inflight = False
                try:
                    consumer.commit(asynchronous=True)
                except KafkaException as exc:  # revoked meanwhile: the new owner replays
                    log.info("router_commit_skipped", error=str(exc)[:300])
        finally:
            consumer.close()

    async def _probe(self, consumer: Consumer) -> None:
        """Idle after a wait: is the broker back? (No record would say so.)"""
        now = time.monotonic()
        if now - self._probed_at < PROBE_EVERY_S:
            return
        self._probed_at = now
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(None, partial(consumer.list_topics, self._topics[0],
                                                     timeout=2))  # fmt: skip
        except KafkaException as exc:
            self.wait.waiting("the broker (metadata)", exc.args[0] if exc.args else exc)
            return
        self.wait.progressed()

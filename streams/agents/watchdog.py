"""Finds input partitions the faust worker owns but has stopped consuming.

faust-streaming can come out of a rebalance with an assigned partition that is
never fetched again (faust-streaming issues #629 and #523: "Aiokafka has not sent
fetch request for TP"): the records wait, nothing fails, nobody is paged. The
watchdog compares, for every input partition this worker is assigned, the group's
committed offset with the partition's end offset. A partition with records waiting
whose committed offset has not moved for `stall_after` seconds is stalled; the
worker then seeks it to its committed offset and resumes it, which puts it back in
the fetcher. Redelivered records are harmless: every effect has a deterministic id
and the group state remembers what it applied.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from streams.settings import KafkaSettings


@dataclass(frozen=True, slots=True)
class Stall:
    topic: str
    partition: int
    committed: int
    end: int
    for_s: float


class StallWatchdog:
    def __init__(self, settings: KafkaSettings, group: str, topics: Iterable[str], *,
                 stall_after: float = 15.0,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self._settings = settings
        self._group = group
        self._topics = set(topics)
        self._stall_after = stall_after
        self._clock = clock
        self._seen: dict[tuple[str, int], tuple[int, float]] = {}  # -> (committed, since)
        self._consumer: Consumer | None = None

    def _open(self) -> Consumer:
        # the agents' group id, only to read its committed offsets: this consumer never
        # subscribes, so it never joins the group or disturbs its assignment
        conf = self._settings.client_config() | {
            "group.id": self._group,
            "client.id": f"tocsin-watchdog-{uuid.uuid4().hex[:6]}",
            "enable.auto.commit": False,
        }
        return Consumer(conf)

    def check(self, assigned: Iterable[tuple[str, int]]) -> list[Stall]:
        """Blocking (Kafka round trips): run it off the event loop."""
        if self._consumer is None:
            self._consumer = self._open()
        tps = [TopicPartition(t, p) for t, p in assigned if t in self._topics]
        now = self._clock()
        current = {(tp.topic, tp.partition) for tp in tps}
        for key in list(self._seen):
            if key not in current:
                del self._seen[key]  # moved to another worker
        if not tps:
            return []
        stalls = []
        for tp in self._consumer.committed(tps, timeout=5):
            low, end = self._consumer.get_watermark_offsets(tp, timeout=5, cached=False)
            committed = tp.offset if tp.offset >= 0 else low
            key = (tp.topic, tp.partition)
            last = self._seen.get(key)
            if committed >= end or last is None or last[0] != committed:
                self._seen[key] = (committed, now)
                continue
            if now - last[1] >= self._stall_after:
                stalls.append(Stall(tp.topic, tp.partition, committed, end, now - last[1]))
                self._seen[key] = (committed, now)  # give the remedy time to work
        return stalls

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None


def install(app: Any, watchdog: StallWatchdog, on_stall: Callable[[Stall], None],
            every: float = 5.0) -> None:  # fmt: skip
    """A faust timer that checks this worker's partitions and puts stalled ones back."""
    from faust.types import TP

    @app.timer(interval=every)  # type: ignore[untyped-decorator]
    async def watch_partitions() -> None:
        if app.rebalancing:
            return  # assignments are moving: nothing is stalled yet
        assigned = [(tp.topic, tp.partition) for tp in app.consumer.assignment()]
        loop = asyncio.get_running_loop()
        for stall in await loop.run_in_executor(None, watchdog.check, assigned):
            on_stall(stall)
            tp = TP(stall.topic, stall.partition)
            app.consumer.resume_partitions([tp])
            await app.consumer.seek(tp, stall.committed)

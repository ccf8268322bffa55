"""Finds input partitions the faust worker owns but has stopped consuming.

faust-streaming can come out of a rebalance with an assigned partition that is
never fetched again (faust-streaming issues #629 and #523: "Aiokafka has not sent
fetch request for TP"): the records wait, nothing fails, nobody is paged. The
watchdog compares, for every input partition this worker is assigned, the group's
committed offset with the partition's end offset. A partition with records waiting
whose committed offset has not moved for `stall_after` seconds is stalled; the
worker then seeks it to its committed offset and resumes it, which puts it back in the
fetcher. Each check also gives the worker's consumer the partitions' leaders when it
fetches from another node (one that hangs: consumer_leaders.py). Redelivered records are
harmless: every effect has a deterministic id and the group state remembers what it
applied.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import structlog
from confluent_kafka import Consumer, KafkaException, TopicPartition

from streams.agents.consumer_leaders import point_at_leaders
from streams.kafka import CALL_TIMEOUT_S, KafkaWait, committed_offsets, watermarks
from streams.runtime.awaiting import chain, tasks_on, threads_at
from streams.runtime.renewal import Renewal
from streams.settings import KafkaSettings

log = structlog.get_logger(__name__)
# a partition stalled this many times in a row, each time put back, is a wait
REMEDIES = 3
# longer than a check takes when every Kafka call in it waits out its bound: a few
# offset and metadata queries, and one metadata request on faust's consumer thread
PATIENCE_S = 60.0


@dataclass(frozen=True, slots=True)
class Stall:
    topic: str
    partition: int
    committed: int
    end: int
    for_s: float


class StallWatchdog:
    def __init__(self, settings: KafkaSettings, group: str, topics: Iterable[str], *,
                 stall_after: float = 15.0, wait: KafkaWait | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self._settings = settings
        self._group = group
        self._topics = set(topics)
        self._stall_after = stall_after
        self._clock = clock
        self._seen: dict[tuple[str, int], tuple[int, float]] = {}  # -> (committed, since)
        self._remedied: dict[tuple[str, int], int] = {}  # stalls in a row, per partition
        self._consumer: Consumer | None = None
        # each assigned partition's leader as the cluster names it, at the last check
        self.leaders: dict[tuple[str, int], int] = {}
        # its round trips double as the agents' probe of the broker: readiness is false
        # while they fail, and the log says so
        self.wait = wait or KafkaWait("agents/watchdog")
        self.renewal = Renewal()

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
        """Blocking (Kafka round trips, each bounded): run it off the event loop. With the
        broker away nothing is stalled: the check says so and is tried again next time."""
        try:
            stalls = self._check(assigned)
        except KafkaException as exc:
            self.wait.waiting("the broker (committed offsets)", exc.args[0] if exc.args else exc)
            self._seen.clear()  # an offset that stood still while the broker was away
            self._remedied.clear()
            if self.renewal.failed():
                self.close()  # the next check opens a new client (see renewal.py)
            return []
        self.renewal.ok()
        stuck = [key for key, n in self._remedied.items() if n >= REMEDIES]
        if stuck:
            # put back again and again and never consumed: the worker's own consumer is
            # what is wrong, and a restart is its remedy (runtime/stuck.py)
            topic, partition = stuck[0]
            self.wait.waiting(f"the stalled partition {topic}[{partition}], "
                              f"put back {self._remedied[stuck[0]]} times")  # fmt: skip
        else:
            self.wait.progressed()
        return stalls

    def _check(self, assigned: Iterable[tuple[str, int]]) -> list[Stall]:
        if self._consumer is None:
            self._consumer = self._open()
        self.leaders = {}
        tps = [TopicPartition(t, p) for t, p in assigned if t in self._topics]
        now = self._clock()
        current = {(tp.topic, tp.partition) for tp in tps}
        for key in list(self._seen):
            if key not in current:
                del self._seen[key]  # moved to another worker
                self._remedied.pop(key, None)
        if not tps:
            # nothing to watch: still a round trip, or an outage would look like progress
            self._consumer.list_topics(next(iter(self._topics), None), timeout=CALL_TIMEOUT_S)
            return []
        self.leaders = self._leaders(tps)
        stalls = []
        for tp in committed_offsets(self._consumer, tps, CALL_TIMEOUT_S):
            low, end = watermarks(self._consumer, tp, CALL_TIMEOUT_S)
            committed = tp.offset if tp.offset >= 0 else low
            key = (tp.topic, tp.partition)
            last = self._seen.get(key)
            if committed >= end or last is None or last[0] != committed:
                self._seen[key] = (committed, now)
                self._remedied.pop(key, None)
                continue
            if now - last[1] >= self._stall_after:
                stalls.append(Stall(tp.topic, tp.partition, committed, end, now - last[1]))
                self._seen[key] = (committed, now)  # give the remedy time to work
                self._remedied[key] = self._remedied.get(key, 0) + 1
        return stalls

    def _leaders(self, tps: list[TopicPartition]) -> dict[tuple[str, int], int]:
        assert self._consumer is not None
        known = {}
        for name in {tp.topic for tp in tps}:
            topic = self._consumer.list_topics(name, timeout=CALL_TIMEOUT_S).topics.get(name)
            for p in topic.partitions.values() if topic is not None else ():
                known[(name, p.id)] = p.leader
        wanted = ((tp.topic, tp.partition) for tp in tps)
        return {key: known[key] for key in wanted if known.get(key, -1) >= 0}

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None


def install(app: Any, watchdog: StallWatchdog, on_stall: Callable[[Stall], None],
            every: float = 5.0, patience: float = PATIENCE_S) -> None:  # fmt: skip
    """A faust timer that checks this worker's partitions and puts stalled ones back. A
    check that has not come back after `patience` seconds makes the worker unready, for
    the stuck-client guard to restart it, and the log says where it hangs."""
    from faust.types import TP

    async def check_once() -> None:
        assigned = [(tp.topic, tp.partition) for tp in app.consumer.assignment()]
        loop = asyncio.get_running_loop()
        try:
            stalls = await loop.run_in_executor(None, watchdog.check, assigned)
            await point_at_leaders(app, watchdog.leaders)
            for stall in stalls:
                on_stall(stall)
                tp = TP(stall.topic, stall.partition)
                app.consumer.resume_partitions([tp])
                await app.consumer.seek(tp, stall.committed)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # an exception in a faust timer ends the worker
            log.warning("watchdog_check_failed", error=f"{type(exc).__name__}: {exc}"[:300])

    @app.timer(interval=every)  # type: ignore[untyped-decorator]
    async def watch_partitions() -> None:
        if app.rebalancing:
            return  # assignments are moving: nothing is stalled yet
        check = asyncio.ensure_future(check_once())
        began = time.monotonic()
        try:
            while not (await asyncio.wait({check}, timeout=patience))[0]:
                await _hung(app, watchdog, check, time.monotonic() - began)
        finally:
            check.cancel()  # the worker stops: nothing waits for it any more


async def _hung(app: Any, watchdog: StallWatchdog, check: asyncio.Future[None],
                for_s: float) -> None:  # fmt: skip
    """The log line and the wait for a check that does not come back: its await chain,
    what faust's consumer thread and the executor's threads are doing."""
    where = chain(check)
    thread = getattr(app.consumer, "_thread", None)
    loop = getattr(thread, "thread_loop", None)
    on_thread = await tasks_on(loop, thread=getattr(thread, "_thread", None)) if loop else []
    executor = getattr(asyncio.get_running_loop(), "_default_executor", None)
    log.warning("watchdog_check_hung", for_s=round(for_s), awaiting=where,
                consumer_thread=on_thread,
                executor=threads_at(list(getattr(executor, "_threads", ()))))  # fmt: skip
    calls = " > ".join(part.split(" (")[0] for part in where.split(" > "))
    watchdog.wait.waiting(f"the watchdog's check, hung in {calls}")

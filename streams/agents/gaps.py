"""Records faust skipped: read them from Kafka before the record that follows them.

faust-streaming treats any jump in the offsets it receives from a partition as a
"gap" (meant for transaction markers and compaction) and acknowledges the offsets
in it without delivering them (faust/transport/consumer.py, `_add_gap`). Around a
rebalance its fetcher can resume a partition at a stale position before it seeks
to the committed offset, so a jump happens over records that exist: they are
committed unprocessed, and an at-least-once pipeline silently loses them (seen
here: one alert in ~1 of 4 two-worker rebalances; faust-streaming issues #216 and
#221 describe the same race).

Each agent asks `GapFiller.missing` for every record before handling it. The filler
remembers, per partition this worker processes, the next offset it expects (first
the group's committed offset); when faust hands over a later offset, the records
in between are read directly with a read_committed consumer (transaction markers
and aborted records are not records, so they come back as nothing) and handed
back to be processed first; an offset already processed in this assignment is a
redelivery and is skipped. Nothing is acknowledged that was not processed.

With the broker away (an outage, or one coming back), those lookups wait for it in
bounded steps (`wait` says so, and readiness with it) rather than raise: the agent
calls the filler for a batch faust already handed over, and a batch its loop leaves
by an exception is acknowledged unprocessed.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from typing import TypeVar

from confluent_kafka import Consumer, KafkaException, TopicPartition

from streams.kafka import KafkaWait, committed_offsets, watermarks
from streams.runtime.renewal import Renewal
from streams.settings import KafkaSettings

Record = tuple[bytes | None, bytes, int]  # key, value, offset
T = TypeVar("T")
RETRY_S = 1.0  # between lookups while the broker is away


class GapFiller:
    def __init__(self, settings: KafkaSettings, group: str, worker: str = "agents/gaps"
                 ) -> None:  # fmt: skip
        self._settings = settings
        self._group = group
        self._next: dict[tuple[str, int], int] = {}
        self._consumer: Consumer | None = None
        self.filled = 0  # records recovered from gaps, for metrics and tests
        self.wait = KafkaWait(worker)
        # this client was seen answering "unknown partition" for minutes after a broker
        # restart while every other client had recovered
        self.renewal = Renewal()

    def forget(self) -> None:
        """On a rebalance: partitions may have moved, their positions with them."""
        self._next.clear()

    async def missing(self, topic: str, partition: int, offset: int) -> list[Record] | None:
        """The records before `offset` that faust skipped (usually none), or None when
        `offset` itself was already processed here."""
        key = (topic, partition)
        expected = self._next.get(key)
        if expected is None:
            expected = await self._patiently("the committed offset", self._committed, topic,
                                             partition)  # fmt: skip
        if offset < expected:
            return None
        if offset > expected:
            records = await self._patiently("the records faust skipped", self._read, topic,
                                            partition, expected, offset)  # fmt: skip
        else:
            records = []
        self._next[key] = offset + 1
        self.filled += len(records)
        return records

    async def _patiently(self, what: str, call: Callable[..., T], *args: object) -> T:
        """``call`` on a thread, again until the broker answers it; with a new client
        when the old one keeps failing (`renewal`)."""
        while True:
            try:
                result = await asyncio.to_thread(call, *args)
            except (KafkaException, TimeoutError) as exc:
                self.wait.waiting(what, exc)
                if self.renewal.failed():
                    await asyncio.to_thread(self.close)
                await asyncio.sleep(RETRY_S)
                continue
            self.renewal.ok()
            self.wait.progressed()
            return result

    def _client(self) -> Consumer:
        if self._consumer is None:
            # the agents' group id only to read its committed offsets; never subscribes
            self._consumer = Consumer(self._settings.client_config() | {
                "group.id": self._group, "enable.auto.commit": False,
                "client.id": f"tocsin-gaps-{uuid.uuid4().hex[:6]}",
                "isolation.level": "read_committed", "fetch.wait.max.ms": 10,
            })  # fmt: skip
        return self._consumer

    def _committed(self, topic: str, partition: int) -> int:
        client = self._client()
        [tp] = committed_offsets(client, [TopicPartition(topic, partition)], 10)
        if tp.offset >= 0:
            return int(tp.offset)
        low, _ = watermarks(client, TopicPartition(topic, partition), 10)
        return int(low)

    def _read(self, topic: str, partition: int, start: int, end: int) -> list[Record]:
        """Records with offsets in [start, end), in order."""
        client = self._client()
        client.assign([TopicPartition(topic, partition, start)])
        out: list[Record] = []
        deadline = time.monotonic() + 30
        try:
            while time.monotonic() < deadline:
                position = client.position([TopicPartition(topic, partition)])[0].offset
                if position >= end:
                    break
                # poll, not consume(n): consume waits for n records or its timeout, and
                # most jumps are one transaction marker, answered by the next record
                msg = client.poll(0.5)
                offset = None if msg is None else msg.offset()
                if msg is None or msg.error() or offset is None or offset >= end:
                    continue
                out.append((msg.key(), msg.value() or b"", offset))
            else:
                raise TimeoutError(f"{topic}[{partition}]: offsets {start}..{end - 1} unread")
        finally:
            client.unassign()
        return out

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None

"""A confluent-kafka producer for the agents' hot outputs, with asyncio deliveries.

faust's `Topic.send` costs ~100 µs of Python per record (faust's FutureMessage and
PendingMessage, then aiokafka's accumulator, partitioner and request encoding on the
event loop); an incident transition writes several records (the re-keyed work
record, ledger entries, a snapshot, notifications, its state). librdkafka batches,
encodes and sends in its own threads: `send` only enqueues, and a batch's `Acks`
resolve once the broker acknowledged all its records (acks=all, idempotent producer).

Records are partitioned with librdkafka's `murmur2_random`, the same murmur2 hash
as Java clients and aiokafka: a key lands on the partition it always did.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer

from streams.kafka import make_producer
from streams.settings import KafkaSettings


class Acks:
    """Kafka's acknowledgements of a set of records: `await acks.all()` once every record
    was acknowledged (or with the first failure). One future per set, not per record:
    librdkafka's delivery callbacks only count, in the poll thread."""

    __slots__ = ("_done", "_error", "_fut", "_loop", "_sealed", "_sent")

    # No lock: only the event loop writes _sent and _sealed, only the poll thread writes
    # _done and _error. Whichever of the two sees the other's last write settles (both
    # may: settling twice is a no-op), so the future can neither settle early nor hang.

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._fut: asyncio.Future[None] = loop.create_future()
        self._sent = self._done = 0
        self._sealed = False
        self._error: KafkaError | None = None

    def _delivered(self, err: KafkaError | None, _msg: Any) -> None:
        if err is not None and self._error is None:
            self._error = err
        self._done += 1
        if self._sealed and self._done == self._sent:
            self._loop.call_soon_threadsafe(_settle, self._fut, self._error)

    async def all(self) -> None:
        self._sealed = True
        if self._done == self._sent:
            _settle(self._fut, self._error)
        await self._fut


class Outbox:
    """`put(acks, ...)` or `await send(acks, ...)` enqueues a record; `await acks.all()`
    waits for Kafka."""

    def __init__(self, settings: KafkaSettings) -> None:
        self._producer: Producer = make_producer(
            settings, partitioner="murmur2_random", **{"linger.ms": 2}
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None

    def _start(self) -> asyncio.AbstractEventLoop:
        loop = self._loop = asyncio.get_running_loop()
        self._poller = threading.Thread(target=self._poll, name="outbox-poll", daemon=True)
        self._poller.start()
        return loop

    def _poll(self) -> None:
        while not self._stop.is_set():
            self._producer.poll(0.05)  # runs the delivery callbacks in this thread

    def acks(self) -> Acks:
        return Acks(self._loop or self._start())

    def put(self, acks: Acks, topic: str, key: bytes | None, value: bytes | None,
            partition: int | None = None) -> bool:  # fmt: skip
        """Enqueue a record now, or False when librdkafka's queue is full (`send` waits).
        Not a coroutine: the hot loops enqueue a few records per transition."""
        where = -1 if partition is None else partition  # -1: the partitioner decides
        try:
            self._producer.produce(topic, value, key, partition=where,
                                   on_delivery=acks._delivered)  # fmt: skip
        except BufferError:
            return False
        # counted after the enqueue: a delivery reported first only settles the set
        # once all() sealed it, and all() comes after the last put
        acks._sent += 1
        return True

    async def send(self, acks: Acks, topic: str, key: bytes | None, value: bytes | None,
                   partition: int | None = None) -> None:  # fmt: skip
        while True:
            if self.put(acks, topic, key, value, partition):
                return
            await asyncio.sleep(0.005)  # librdkafka's queue is full: let it drain

    def close(self, timeout: float = 10.0) -> None:
        self._producer.flush(timeout)
        self._stop.set()
        if self._poller is not None:
            self._poller.join(timeout)


def _settle(fut: asyncio.Future[None], err: KafkaError | None) -> None:
    if fut.done():
        return
    if err is None:
        fut.set_result(None)
    else:
        fut.set_exception(KafkaException(err))

"""A confluent-kafka producer for the agents' hot outputs, with asyncio deliveries.

faust's `Topic.send` costs ~100 µs of Python per record (faust's FutureMessage and
PendingMessage, then aiokafka's accumulator, partitioner and request encoding on the
event loop); an incident transition writes several records (the re-keyed work
record, ledger entries, a snapshot, notifications). librdkafka batches, encodes and
sends in its own threads: `send` only enqueues, and its future resolves once the
broker acknowledged the record (acks=all, idempotent producer) or failed it.

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


class Outbox:
    """`await send(...)` enqueues and returns a future of the broker's acknowledgement."""

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

    async def send(self, topic: str, key: bytes | None, value: bytes) -> asyncio.Future[None]:
        loop = self._loop or self._start()
        fut: asyncio.Future[None] = loop.create_future()

        def delivered(err: KafkaError | None, _msg: Any) -> None:
            loop.call_soon_threadsafe(_settle, fut, err)

        while True:
            try:
                self._producer.produce(topic, value, key, on_delivery=delivered)
                return fut
            except BufferError:  # librdkafka's queue is full: let it drain
                await asyncio.sleep(0.005)

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

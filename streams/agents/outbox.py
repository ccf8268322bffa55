"""A confluent-kafka producer for the agents' hot outputs, with asyncio deliveries.

faust's `Topic.send` costs ~100 µs of Python per record (faust's FutureMessage and
PendingMessage, then aiokafka's accumulator, partitioner and request encoding on the
event loop); an incident transition writes several records (the re-keyed work
record, ledger entries, a snapshot, notifications, its state). librdkafka batches,
encodes and sends in its own threads: `send` only enqueues, and a batch's `Acks`
resolve once the broker acknowledged all its records (acks=all, idempotent producer).

Records are partitioned with librdkafka's `murmur2_random`, the same murmur2 hash
as Java clients and aiokafka: a key lands on the partition it always did.

With the broker away, records wait in librdkafka's queue for as long as it takes
(no delivery timeout: a record given up would be a record lost once its batch's
offsets are committed); a batch waiting longer than ACK_PATIENCE_S makes the
worker not ready and says so in the log until its acknowledgements arrive.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import structlog
from confluent_kafka import KafkaError, KafkaException, Producer

from streams.kafka import KafkaWait, make_producer
from streams.producer_stats import ProducerStats
from streams.runtime.produce import produce_async
from streams.settings import KafkaSettings

POLL_EVERY = 0.001  # s between polls while a batch waits for its acknowledgements
ACK_PATIENCE_S = 10.0  # a batch unacknowledged this long: the broker is away
REPORT_EVERY_S = 30.0  # where a held batch's records wait, logged this often

log = structlog.get_logger(__name__)


class Acks:
    """Kafka's acknowledgements of a set of records: `await acks.all()` once every record
    was acknowledged (raising the first failure). Delivery callbacks only count."""

    __slots__ = ("_done", "_error", "_poll", "_reported_at", "_sent", "_wait", "_where")

    def __init__(self, poll: Callable[[float], int], wait: KafkaWait | None = None,
                 where: Callable[[], dict[str, Any]] = dict) -> None:  # fmt: skip
        self._poll = poll
        self._sent = self._done = 0
        self._error: KafkaError | None = None
        self._wait = wait
        self._where = where  # where the records wait, told when they wait too long
        self._reported_at = 0.0

    def _delivered(self, err: KafkaError | None, _msg: Any) -> None:
        if err is not None and self._error is None:
            self._error = err
        self._done += 1

    async def all(self) -> None:
        # Deliveries are served here, on the event loop's thread. A poll thread would need
        # the GIL back for every delivery callback while the loop decides: under load each
        # callback waited out a switch interval (5 ms), and a batch's acknowledgement took
        # 0.1-0.8 s instead of a broker round trip.
        since = 0.0
        while self._done < self._sent:
            if not self._poll(0):
                await asyncio.sleep(POLL_EVERY)
                if self._wait is None:
                    continue
                now = time.monotonic()
                since = since or now
                if now - since > ACK_PATIENCE_S:
                    left = self._sent - self._done
                    self._wait.waiting(f"acknowledgement of {left} records")
                    if now - self._reported_at > REPORT_EVERY_S:
                        self._reported_at = now
                        log.warning("acknowledgements_held", records=left,
                                    waited_s=round(now - since, 1), **self._where())  # fmt: skip
        if since and self._wait is not None:
            self._wait.progressed()
        if self._error is not None:
            raise KafkaException(self._error)


class Outbox:
    """`put(acks, ...)` or `await send(acks, ...)` enqueues a record; `await acks.all()`
    waits for Kafka."""

    def __init__(self, settings: KafkaSettings, wait: KafkaWait | None = None) -> None:
        self.stats = ProducerStats()
        # message.timeout.ms 0: delivered however long the broker is away (see above)
        self._producer: Producer = make_producer(
            settings, partitioner="murmur2_random",
            **{"linger.ms": 2, "message.timeout.ms": 0, **self.stats.conf()},
        )  # fmt: skip
        self.wait = wait or KafkaWait("agents/outbox")

    def acks(self) -> Acks:
        return Acks(self._producer.poll, self.wait, self.stats.waiting)

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
        acks._sent += 1
        return True

    async def send(self, acks: Acks, topic: str, key: bytes | None, value: bytes | None,
                   partition: int | None = None) -> None:  # fmt: skip
        # librdkafka's queue may be full: a record leaves it once its delivery is served
        await produce_async(self._producer, topic, value, key,
                            -1 if partition is None else partition,
                            on_delivery=acks._delivered)  # fmt: skip
        acks._sent += 1

    def close(self, timeout: float = 10.0) -> None:
        self._producer.flush(timeout)

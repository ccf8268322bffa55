"""Route a record a worker cannot use to the `deadletter` topic, and go on.

Every worker builds its dead letters here: `dead_letter` makes the record (the original
bytes, where they came from, why) and counts it; `DeadLetterSink` also produces it
through the worker's own producer (or its transaction's outputs)."""

from __future__ import annotations

from typing import Protocol

import structlog

from schemas import DeadLetter, encode
from streams.kafka import KafkaRecord
from streams.logs import Throttle
from streams.metrics import WorkerMetrics

log = structlog.get_logger(__name__)


_THROTTLE = Throttle()


class ProducerLike(Protocol):
    def produce(
        self, topic: str, value: str | bytes | None = ..., key: str | bytes | None = ...
    ) -> None: ...


def dead_letter(metrics: WorkerMetrics | None, *, source: str, value: bytes | None,
                reason: str, error: str, stage: str, worker: str,
                partition: int | None = None, offset: int | None = None,
                key: bytes | None = None, logged: bool = True,
                tenant: str = "default") -> bytes:  # fmt: skip
    """The encoded dead letter of `value`, counted in `tocsin_dead_letters_total` and
    logged (unless not `logged`: an intake answers its caller instead, and a flood of
    hostile requests must not become a flood of log lines). The letter keeps a bounded
    prefix of the bytes with their size and digest, so it always fits in one record."""
    letter = DeadLetter(source_topic=source, partition=partition, offset=offset, key=key,
                        value=value, reason=reason, error=error[:8000], stage=stage,
                        worker=worker, tenant=tenant)  # fmt: skip
    if metrics is not None:
        metrics.dead_letters.labels(topic=source, reason=reason).inc()
    if logged:
        # a stream of bad records (a misconfigured producer, a hostile client) must not
        # become a stream of log lines: every letter is still written and counted
        let = _THROTTLE.held_back((source, reason))
        if let is not None:
            log.warning("dead_letter", source=source, partition=partition, offset=offset,
                        reason=reason, error=letter.error[:300],
                        more_like_this=let[0])  # fmt: skip
    # an exact-size copy: orjson's result keeps the whole buffer it grew to write it
    return memoryview(encode(letter)).tobytes()


class DeadLetterSink:
    """Writes the original bytes, the source position and the reason; counts by reason.

    The dead letter goes through the caller's producer so that, inside a Kafka
    transaction, it commits atomically with the consumer offsets: the poison
    record is neither lost nor dead-lettered twice after a crash.
    """

    def __init__(
        self, producer: ProducerLike, topic: str, metrics: WorkerMetrics, worker: str
    ) -> None:
        self._producer = producer
        self._topic = topic
        self._metrics = metrics
        self._worker = worker

    def send(self, record: KafkaRecord, *, reason: str, error: str, stage: str = "decode",
             tenant: str = "default") -> None:  # fmt: skip
        """`tenant`: whose record it is, when the caller could tell."""
        value = dead_letter(self._metrics, source=record.topic() or "unknown",
                            value=record.value(), reason=reason, error=error, stage=stage,
                            worker=self._worker, partition=record.partition(),
                            offset=record.offset(), key=record.key(),
                            tenant=tenant)  # fmt: skip
        self._producer.produce(self._topic, value=value, key=record.key())

"""Route a record a worker cannot use to the `deadletter` topic, and go on."""

from __future__ import annotations

from typing import Protocol

import structlog

from schemas import DeadLetter, encode
from streams.kafka import KafkaRecord
from streams.metrics import WorkerMetrics

log = structlog.get_logger(__name__)


class ProducerLike(Protocol):
    def produce(
        self, topic: str, value: str | bytes | None = ..., key: str | bytes | None = ...
    ) -> None: ...


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

    def send(self, record: KafkaRecord, *, reason: str, error: str, stage: str = "decode") -> None:
        source = record.topic() or "unknown"
        letter = DeadLetter(
            source_topic=source,
            partition=record.partition(),
            offset=record.offset(),
            key=record.key(),
            value=record.value(),
            reason=reason,
            error=error[:8000],
            stage=stage,
            worker=self._worker,
        )
        self.send_letter(letter, key=record.key())

    def send_letter(self, letter: DeadLetter, key: bytes | None) -> None:
        self._producer.produce(self._topic, value=encode(letter), key=key)
        self._metrics.dead_letters.labels(topic=letter.source_topic, reason=letter.reason).inc()
        log.warning(
            "dead_letter",
            source=letter.source_topic,
            partition=letter.partition,
            offset=letter.offset,
            reason=letter.reason,
            error=letter.error[:300],
        )

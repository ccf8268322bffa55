"""`tocsin run ingest --format influx --topic telegraf`: decode agent formats that arrive
directly on a Kafka topic (collectd write_kafka, Telegraf's Influx line protocol, OTLP
JSON, rsyslog's JSON log lines) into `metrics` / `logs`.

At least once, without duplicates that matter: outputs and dead letters are flushed
before offsets are committed, and each output's ``event_id`` is derived from the input
position (topic/partition/offset/index), so a batch re-read after a crash re-emits the
same ids and consumers deduplicate them. A record that does not decode goes to
`deadletter` with its bytes; it never stops the loop.

A broker outage does not stop it either: outputs wait in the producer's queue for as
long as it takes (no delivery timeout), the flush and the commit are retried in
bounded steps, readiness is false meanwhile and the log says what it waits for.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from threading import Event

import structlog
from confluent_kafka import KafkaError, Message
from pydantic import BaseModel

from connectors.sources.collectd import decode_collectd
from connectors.sources.influx import decode_influx
from connectors.sources.jsonlog import decode_json_logs
from connectors.sources.otlp import decode_otlp
from schemas import DecodeError, LogRecord, MetricSample, encode
from streams.catalog import Catalog
from streams.health import Health
from streams.kafka import (
    IdleProbe,
    KafkaWait,
    commit_consumed,
    flush_acknowledged,
    make_consumer,
    make_producer,
)
from streams.metrics import WorkerMetrics
from streams.runtime.deadletters import DeadLetterSink
from streams.settings import KafkaSettings

log = structlog.get_logger(__name__)

Decoder = Callable[[bytes, datetime], list[MetricSample] | list[LogRecord]]

DECODERS: dict[str, Decoder] = {
    "influx": lambda b, now: decode_influx(b, now).samples,
    "collectd": lambda b, now: decode_collectd(b),
    "otlp": lambda b, now: decode_otlp(b),
    "jsonlog": lambda b, now: decode_json_logs(b, now),
}


def event_id(topic: str, partition: int | None, offset: int | None, index: int) -> str:
    return hashlib.sha256(f"{topic}/{partition}/{offset}/{index}".encode()).hexdigest()[:32]


def outputs(catalog: Catalog, msg: Message, events: list[MetricSample] | list[LogRecord]
            ) -> list[tuple[str, bytes, bytes]]:  # fmt: skip
    out: list[tuple[str, bytes, bytes]] = []
    for i, ev in enumerate(events):
        eid = event_id(msg.topic() or "", msg.partition(), msg.offset(), i)
        stamped: BaseModel = ev.model_copy(update={"event_id": eid})
        if isinstance(ev, MetricSample):
            out.append((catalog.name("metrics"), ev.series_key().encode(), encode(stamped)))
        elif isinstance(ev, LogRecord):
            key = (ev.labels.get("service") or ev.source).encode()
            out.append((catalog.name("logs"), key, encode(stamped)))
    return out


class IngestWorker:
    def __init__(self, settings: KafkaSettings, fmt: str, topic: str,
                 metrics: WorkerMetrics | None = None,
                 health: Health | None = None) -> None:  # fmt: skip
        self.decode = DECODERS[fmt]
        self.topic = topic
        self.catalog = Catalog(settings)
        self.metrics = metrics or WorkerMetrics()
        self.health = health or Health()
        self.producer = make_producer(settings, **{"message.timeout.ms": 0})
        self.consumer = make_consumer(settings, f"{settings.topic_prefix}ingest-{fmt}-{topic}")
        self.wait = KafkaWait(f"ingest-{fmt}")
        self.health.add_check("kafka", self.wait.check)
        self._stop = Event()
        self._probe = IdleProbe(self.consumer, topic, self.wait)
        self.dlq = DeadLetterSink(self.producer, self.catalog.name("deadletter"), self.metrics,
                                  worker=f"ingest-{fmt}")  # fmt: skip

    def run(self, stop: Event) -> None:
        self._stop = stop
        self.consumer.subscribe([self.topic])
        try:
            while not stop.is_set():
                msgs = self.consumer.consume(500, timeout=0.5)
                self.health.beat()
                if msgs:
                    self.handle(msgs)
                else:
                    self._probe()
        finally:
            self.producer.flush(30)
            self.consumer.close()

    def handle(self, msgs: list[Message]) -> None:
        now = datetime.now(UTC)
        for msg in msgs:
            err = msg.error()
            if err is not None:
                if err.code() != KafkaError._PARTITION_EOF:
                    # the broker away: librdkafka reconnects; said once a while
                    self.wait.waiting("the broker (fetch)", err)
                continue
            try:
                events = self.decode(msg.value() or b"", now)
            except DecodeError as exc:
                self.dlq.send(msg, reason=exc.reason, error=str(exc))
                continue
            for topic, key, value in outputs(self.catalog, msg, events):
                self._produce(topic, key, value)
            self.metrics.records_processed.labels(topic=self.topic).inc()
        flush_acknowledged(self.producer, self.wait, self.health.beat, self._stop, "outputs")
        commit_consumed(self.consumer, self.wait, self.health.beat, self._stop)

    def _produce(self, topic: str, key: bytes, value: bytes) -> None:
        while True:
            try:
                self.producer.produce(topic, key=key, value=value)
                return
            except BufferError:  # a full queue: let it drain instead of dropping
                self.producer.poll(0.5)
                self.health.beat()

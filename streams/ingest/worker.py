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

import asyncio
import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from threading import Event

from confluent_kafka import Message
from pydantic import BaseModel

from connectors.sources.collectd import decode_collectd
from connectors.sources.influx import decode_influx
from connectors.sources.jsonlog import decode_json_logs
from connectors.sources.otlp import decode_otlp
from schemas import DecodeError, LogRecord, MetricSample, encode
from streams.catalog import Catalog
from streams.health import Health
from streams.kafka import make_producer
from streams.metrics import WorkerMetrics
from streams.runtime.at_least_once import AtLeastOnceLoop
from streams.runtime.deadletters import DeadLetterSink
from streams.runtime.records import TP, Assigned, Run
from streams.runtime.worker import Outputs
from streams.settings import KafkaSettings

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


class Decoding:
    """The ingest worker proper (an AtLeastOnceWorker): each record decoded into
    samples or log records, or dead-lettered with its bytes."""

    def __init__(self, catalog: Catalog, fmt: str, topic: str, metrics: WorkerMetrics) -> None:
        self.decode = DECODERS[fmt]
        self.catalog, self.metrics, self.worker = catalog, metrics, f"ingest-{fmt}"
        self.topics = [topic]
        self.dlq: DeadLetterSink | None = None

    def on_assign(self, partitions: list[Assigned]) -> None:
        return None  # stateless

    def on_revoke(self, partitions: list[TP]) -> None:
        return None

    def process(self, runs: list[Run], out: Outputs) -> None:
        if self.dlq is None:
            self.dlq = DeadLetterSink(out, self.catalog.name("deadletter"), self.metrics,
                                      worker=self.worker)  # fmt: skip
        now = datetime.now(UTC)
        for _, run in runs:
            for msg in run:
                try:
                    events = self.decode(msg.value() or b"", now)
                except DecodeError as exc:
                    self.dlq.send(msg, reason=exc.reason, error=str(exc))
                    continue
                for topic, key, value in outputs(self.catalog, msg, events):
                    out.produce(topic, value, key)


class IngestWorker:
    def __init__(self, settings: KafkaSettings, fmt: str, topic: str,
                 metrics: WorkerMetrics | None = None,
                 health: Health | None = None) -> None:  # fmt: skip
        self.metrics = metrics or WorkerMetrics()
        self.health = health or Health()
        self.decoding = Decoding(Catalog(settings), fmt, topic, self.metrics)
        # message.timeout.ms 0: an output waits out any outage (see the runtime)
        self.loop = AtLeastOnceLoop(
            settings, self.decoding, name=f"ingest-{fmt}", producer=make_producer(
                settings, **{"message.timeout.ms": 0}),
            group_id=f"{settings.topic_prefix}ingest-{fmt}-{topic}", health=self.health,
            metrics=self.metrics, batch=500, block_s=0.5)  # fmt: skip

    def run(self, stop: Event) -> None:
        asyncio.run(self.loop.run(stop))

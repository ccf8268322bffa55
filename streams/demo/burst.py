"""A first look at tocsin: a burst of metrics and logs through the real broker."""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from confluent_kafka import KafkaError

from schemas import DecodeError, LogRecord, MetricSample, decode, encode
from streams.catalog import Catalog
from streams.kafka import make_consumer, make_producer
from streams.settings import KafkaSettings

HOSTS = [f"web-{i:02d}" for i in range(12)]
SERVICES = ["checkout", "search", "auth", "catalog"]


def synthetic_burst(
    n_hosts: int, seconds: int, start: datetime, rng: random.Random
) -> tuple[list[MetricSample], list[LogRecord]]:
    metrics: list[MetricSample] = []
    logs: list[LogRecord] = []
    for s in range(seconds):
        at = start + timedelta(seconds=s)
        for host in HOSTS[:n_hosts]:
            svc = SERVICES[int(host[-2:]) % len(SERVICES)]
            labels = {"host": host, "service": svc}
            metrics.append(
                MetricSample(
                    name="cpu_percent",
                    value=round(rng.uniform(5, 60), 2),
                    time=at,
                    labels=labels,
                    unit="percent",
                )
            )
            metrics.append(
                MetricSample(
                    name="memory_percent",
                    value=round(rng.uniform(30, 70), 2),
                    time=at,
                    labels=labels,
                    unit="percent",
                )
            )
            status = 500 if rng.random() < 0.02 else 200
            logs.append(
                LogRecord(
                    time=at,
                    message=f"GET /api/{svc} {status}",
                    labels=labels,
                    http_status=status,
                    duration_ms=round(rng.expovariate(1 / 80), 1),
                    source=host,
                )
            )
    return metrics, logs


def run_burst(settings: KafkaSettings, echo: Callable[[str], None], seconds: int = 10) -> int:
    catalog = Catalog(settings)
    metrics_topic, logs_topic = catalog.name("metrics"), catalog.name("logs")
    rng = random.Random(7)
    metrics, logs = synthetic_burst(len(HOSTS), seconds, datetime.now(UTC), rng)
    producer = make_producer(settings)
    for m in metrics:
        producer.produce(metrics_topic, key=m.series_key().encode(), value=encode(m))
    for rec in logs:
        producer.produce(logs_topic, key=rec.source.encode(), value=encode(rec))
    producer.produce(metrics_topic, key=b"demo-poison", value=b'{"name": "cpu", "value": "NaN"}')
    left = producer.flush(30)
    echo(
        f"produced {len(metrics)} metric samples and {len(logs)} log records "
        f"(+1 invalid record), {left} unacknowledged"
    )

    consumer = make_consumer(settings, group_id=f"tocsin-demo-{int(time.time())}")
    consumer.subscribe([metrics_topic, logs_topic])
    expected = len(metrics) + len(logs) + 1
    seen: Counter[str] = Counter()
    shown = 0
    deadline = time.monotonic() + 60
    while sum(seen.values()) < expected and time.monotonic() < deadline:
        for msg in consumer.consume(500, timeout=1.0):
            err = msg.error()
            if err is not None:
                if err.code() != KafkaError._PARTITION_EOF:
                    echo(f"consumer error: {err}")
                continue
            model: type[MetricSample | LogRecord] = (
                MetricSample if msg.topic() == metrics_topic else LogRecord
            )
            try:
                event: MetricSample | LogRecord = decode(model, msg.value() or b"")
            except DecodeError as exc:
                seen["invalid"] += 1
                echo(f"  rejected {msg.topic()}[{msg.partition()}]@{msg.offset()}: {exc}")
                continue
            seen[model.__name__] += 1
            if shown < 6:
                shown += 1
                echo(f"  {msg.topic()}[{msg.partition()}]@{msg.offset()} {_describe(event)}")
    consumer.close()
    echo(f"consumed and validated: {dict(seen)}")
    return 0 if sum(seen.values()) >= expected else 1


def _describe(event: MetricSample | LogRecord) -> str:
    if isinstance(event, MetricSample):
        return f"{event.series_key()} = {event.value} @ {event.time:%H:%M:%S}"
    return f"log {event.source} status={event.http_status} {event.duration_ms}ms"

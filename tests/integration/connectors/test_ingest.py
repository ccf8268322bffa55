"""`tocsin run ingest`: agent formats arriving on a Kafka topic become metrics and logs;
what does not decode is dead-lettered with its bytes; a re-read repeats the same ids."""

from __future__ import annotations

import threading
import time

from confluent_kafka.admin import NewTopic

from schemas import DeadLetter, LogRecord, MetricSample, decode
from streams.catalog import Catalog
from streams.ingest.worker import IngestWorker, event_id
from streams.kafka import make_admin, make_producer
from streams.settings import KafkaSettings
from tests.integration.connectors.support import read_values


def _run(settings: KafkaSettings, fmt: str, topic: str, until: int, out: str) -> None:
    worker = IngestWorker(settings, fmt, topic)
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    thread.start()
    deadline = time.monotonic() + 40
    while len(read_values(settings, out)) < until and time.monotonic() < deadline:
        time.sleep(0.5)
    stop.set()
    thread.join(20)


def test_influx_and_json_logs_from_kafka_topics(
    kafka_settings: KafkaSettings, topics: Catalog
) -> None:
    telegraf, rsyslog = (
        f"{kafka_settings.topic_prefix}telegraf",
        f"{kafka_settings.topic_prefix}rsyslog",
    )
    admin = make_admin(kafka_settings)
    for f in admin.create_topics([NewTopic(t, 1, 1) for t in (telegraf, rsyslog)]).values():
        f.result(30)
    producer = make_producer(kafka_settings)
    producer.produce(
        telegraf,
        b"cpu,host=a usage=1.5 1767225600000000000\ncpu,host=b usage=2.5 1767225600000000000",
    )
    producer.produce(telegraf, b"cpu,host=a usage=oops")
    producer.produce(telegraf, b"mem,host=a used=3i 1767225600000000000")
    producer.produce(rsyslog, b'{"time":"2026-01-01T00:00:00Z","status":503,"service":"api"}')
    assert producer.flush(10) == 0

    _run(kafka_settings, "influx", telegraf, 3, topics.name("metrics"))
    _run(kafka_settings, "jsonlog", rsyslog, 1, topics.name("logs"))

    samples = [decode(MetricSample, v) for v in read_values(kafka_settings, topics.name("metrics"))]
    assert sorted((s.name, s.labels["host"], s.value) for s in samples) == [
        ("cpu_usage", "a", 1.5),
        ("cpu_usage", "b", 2.5),
        ("mem_used", "a", 3.0),
    ]
    [log] = [decode(LogRecord, v) for v in read_values(kafka_settings, topics.name("logs"))]
    assert log.http_status == 503 and log.labels == {"service": "api"}
    [letter] = [
        decode(DeadLetter, v) for v in read_values(kafka_settings, topics.name("deadletter"))
    ]
    assert letter.value == b"cpu,host=a usage=oops" and letter.source_topic == telegraf
    assert "line 1" in letter.error
    # ids come from the input position: a crash-and-re-read emits the same ids
    by_value = {s.value: s.event_id for s in samples}
    assert by_value[1.5] == event_id(telegraf, 0, 0, 0)
    assert by_value[2.5] == event_id(telegraf, 0, 0, 1)
    assert by_value[3.0] == event_id(telegraf, 0, 2, 0)

"""The spine against the real broker: topics, 10k samples in order, dead letters."""

from __future__ import annotations

import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta

from confluent_kafka import TopicPartition
from confluent_kafka.admin import NewPartitions, NewTopic

from schemas import DeadLetter, DecodeError, MetricSample, decode, encode
from streams.admin import check_topics, create_topics
from streams.catalog import Catalog
from streams.kafka import make_admin, make_consumer, make_producer
from streams.metrics import LagReporter, WorkerMetrics
from streams.runtime.deadletters import DeadLetterSink
from streams.settings import KafkaSettings

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def test_topics_are_created_idempotently_and_drift_is_reported(
    kafka_settings: KafkaSettings,
) -> None:
    admin = make_admin(kafka_settings)
    catalog = Catalog(kafka_settings)
    assert {d.problem for d in check_topics(admin, catalog)} == {"missing"}
    created = create_topics(admin, catalog)
    assert len(created) == len(catalog.resolved())
    # usable as soon as create returns: a worker started right after subscribes and produces
    metadata = admin.list_topics(timeout=10).topics
    leaderless = [
        (t, p) for t in created for p, m in metadata[t].partitions.items() if m.leader < 0
    ]
    assert leaderless == []
    # and served: a new client's offset lookup is answered, not told "not leader"
    reader = make_consumer(kafka_settings, f"{kafka_settings.topic_prefix}reader")
    try:
        for t in created:
            for p in metadata[t].partitions:
                assert reader.get_watermark_offsets(TopicPartition(t, p), timeout=10,
                                                    cached=False) == (0, 0)  # fmt: skip
    finally:
        reader.close()
    assert create_topics(admin, catalog) == [], "second create is a no-op"
    assert check_topics(admin, catalog) == []

    alerts = catalog.name("alerts")
    admin.create_partitions([NewPartitions(alerts, 5)])[alerts].result()
    expected = [f"{alerts}: partitions 5, expected 3"]
    # metadata propagates asynchronously after create_partitions: poll briefly
    drifts: list[str] = []
    for _ in range(50):
        drifts = [str(d) for d in check_topics(admin, catalog)]
        if drifts == expected:
            break
        time.sleep(0.2)
    assert drifts == expected


def test_topics_with_fewer_copies_than_configured_are_reported(
    kafka_settings: KafkaSettings,
) -> None:
    # created with one replica (as an installation configured before it moved to a
    # cluster), then checked by settings that ask for three: every topic under the
    # prefix is named, faust's changelogs as the catalog's own
    admin = make_admin(kafka_settings)
    create_topics(admin, Catalog(kafka_settings))
    changelog = f"{kafka_settings.topic_prefix}tocsin-agents-groups-changelog"
    admin.create_topics([NewTopic(changelog, 3, 1)])[changelog].result()
    # created on the controller; the broker's metadata lists it a moment later
    deadline = time.monotonic() + 30
    while changelog not in admin.list_topics(timeout=10).topics:
        assert time.monotonic() < deadline, f"{changelog} never listed"
        time.sleep(0.1)
    wanted = kafka_settings.model_copy(update={"replication_factor": 3})
    drifts = {(d.topic, d.problem) for d in check_topics(admin, Catalog(wanted))}
    names = [t.name for t in Catalog(wanted)] + [changelog]
    assert {(n, "replication factor 1, expected 3") for n in names} <= drifts
    assert {(t, "min.insync.replicas=1, expected 2") for t in names[:-1]} <= drifts


def test_ten_thousand_samples_come_back_validated_and_in_order_per_key(
    kafka_settings: KafkaSettings, topics: Catalog
) -> None:
    topic = topics.name("metrics")
    producer = make_producer(kafka_settings)
    sent: dict[str, list[float]] = defaultdict(list)
    for i in range(10_000):
        s = MetricSample(
            name="cpu_percent",
            value=float(i),
            time=T0 + timedelta(seconds=i),
            labels={"host": f"h{i % 37}"},
        )
        producer.produce(topic, key=s.series_key().encode(), value=encode(s))
        sent[s.series_key()].append(s.value)
    assert producer.flush(60) == 0

    consumer = make_consumer(kafka_settings, group_id=f"{kafka_settings.topic_prefix}reader")
    consumer.subscribe([topic])
    got: dict[str, list[float]] = defaultdict(list)
    n = 0
    for _ in range(120):
        for msg in consumer.consume(2000, timeout=1.0):
            assert msg.error() is None
            sample = decode(MetricSample, msg.value())
            assert msg.key() == sample.series_key().encode()
            got[sample.series_key()].append(sample.value)
            n += 1
        if n >= 10_000:
            break
    consumer.close()
    assert n == 10_000
    assert got == sent, "every key's samples arrive in the order they were produced"


def test_a_poison_record_goes_to_deadletter_with_bytes_and_offset(
    kafka_settings: KafkaSettings, topics: Catalog
) -> None:
    topic = topics.name("metrics")
    producer = make_producer(kafka_settings)
    poison = b'{"name":"cpu","value":"NaN","time":"2026-01-01T00:00:00Z"}'
    good = [MetricSample(name="cpu", value=float(i), time=T0) for i in range(5)]
    for s in good[:2]:
        producer.produce(topic, key=b"cpu", value=encode(s))
    producer.produce(topic, key=b"cpu", value=poison)
    for s in good[2:]:
        producer.produce(topic, key=b"cpu", value=encode(s))
    assert producer.flush(30) == 0

    metrics = WorkerMetrics()
    sink = DeadLetterSink(producer, topics.name("deadletter"), metrics, worker="test")
    consumer = make_consumer(kafka_settings, group_id=f"{kafka_settings.topic_prefix}w")
    consumer.subscribe([topic])
    passed: list[float] = []
    poison_offset = None
    while len(passed) < 5:
        for msg in consumer.consume(100, timeout=1.0):
            try:
                passed.append(decode(MetricSample, msg.value()).value)
            except DecodeError as exc:
                poison_offset = msg.offset()
                sink.send(msg, reason=exc.reason, error=str(exc))
    consumer.close()
    assert producer.flush(30) == 0
    assert passed == [0.0, 1.0, 2.0, 3.0, 4.0], "the good records around the poison pass"

    dlq = make_consumer(kafka_settings, group_id=f"{kafka_settings.topic_prefix}dlq")
    dlq.subscribe([topics.name("deadletter")])
    letters = []
    for _ in range(30):
        letters += [decode(DeadLetter, m.value()) for m in dlq.consume(10, timeout=1.0)]
        if letters:
            break
    dlq.close()
    assert len(letters) == 1
    letter = letters[0]
    assert letter.value == poison
    assert letter.source_topic == topic and letter.offset == poison_offset == 2
    assert letter.reason == "validation" and "MetricSample.value" in letter.error
    assert metrics.dead_letters.labels(topic=topic, reason="validation")._value.get() == 1


def test_consumer_lag_is_reported_per_held_partition_and_dropped_when_it_moves(
    kafka_settings: KafkaSettings, topics: Catalog
) -> None:
    topic = topics.name("notifications")
    producer = make_producer(kafka_settings)
    for i in range(300):
        producer.produce(topic, value=b"x", partition=i % 3)
    assert producer.flush(30) == 0
    metrics = WorkerMetrics()
    consumer = make_consumer(kafka_settings, group_id=f"{kafka_settings.topic_prefix}lag",
                             **{"max.partition.fetch.bytes": 1024})  # fmt: skip
    consumer.assign([TopicPartition(topic, p, 0) for p in range(3)])
    lag = LagReporter(consumer, metrics.lag, every_s=0)
    taken: dict[int, int] = {}
    while len(taken) < 3 or sum(taken.values()) < 30:
        for m in consumer.consume(10, timeout=1.0):
            taken[m.partition() or 0] = taken.get(m.partition() or 0, 0) + 1

    def reported() -> dict[str, float]:
        return {
            s.labels["partition"]: s.value
            for family in metrics.registry.collect()
            if family.name == "tocsin_consumer_lag"
            for s in family.samples
        }

    lag.maybe_report()
    # what a worker has read is no longer lag; the rest of the 300 records is
    assert set(reported()) == {"0", "1", "2"}
    assert reported() == {str(p): 100.0 - n for p, n in taken.items()}
    consumer.assign([TopicPartition(topic, p, 0) for p in (0, 2)])
    again: set[int] = set()
    while again != {0, 2}:
        again |= {m.partition() or 0 for m in consumer.consume(10, timeout=1.0)}
    lag.maybe_report()
    assert set(reported()) == {"0", "2"}, "a partition that moved away is not reported"
    consumer.close()

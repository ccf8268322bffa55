"""A checkpoint belongs to the consumer group whose offsets it matches: a second
deployment over the same topics, and a group whose offsets an operator reset, each
produce exactly what a fresh run over their input produces."""

from __future__ import annotations

import time
from pathlib import Path

from confluent_kafka import ConsumerGroupTopicPartitions, KafkaException, TopicPartition

from harness.workers import kill9, start_worker, wait_for_lag_zero
from schemas.rules import load_rule_files
from streams.catalog import Catalog
from streams.kafka import make_admin, make_consumer
from streams.processor.checkpoint import read_checkpoint
from streams.settings import KafkaSettings
from tests.processor_support import produce_fleet, read_all, reference_transitions

RULES = Path("rules/default.yaml")


def run_to_end(settings: KafkaSettings, topics: Catalog, log: Path, group: str) -> None:
    worker = start_worker(settings, RULES, log, checkpoint_every=0.5, batch_size=500,
                          group=group)  # fmt: skip
    try:
        assert wait_for_lag_zero(settings, topics, group, timeout=120), log.read_text()[-3000:]
    finally:
        kill9(worker)
    # what the next run must not take for its own: this group's state, checkpointed
    # past the start of its input
    assert any(offset > 0 for offset in checkpointed(settings, topics, group).values())


def checkpointed(settings: KafkaSettings, topics: Catalog, group: str) -> dict[str, int]:
    """The offset of the latest checkpoint of each input partition of `group`."""
    state = topics.name("processor-state")
    reader = make_consumer(settings, f"{group}-checkpoint-reader")
    try:
        n = len(reader.list_topics(state, timeout=10).topics[state].partitions)
        found = {}
        for t in ("metrics", "logs"):
            for p in range(settings.partitions):
                cp = read_checkpoint(reader, state, p % n, group, topics.name(t), p)
                if cp is not None:
                    found[f"{t}[{p}]"] = cp.offset
        return found
    finally:
        reader.close()


def alerts(settings: KafkaSettings, topics: Catalog) -> list[bytes]:
    return sorted(v for vs in read_all(settings, topics.name("alerts")).values() for v in vs)


def test_a_second_group_does_not_start_from_the_first_groups_checkpoint(
    kafka_settings: KafkaSettings, topics: Catalog, tmp_path: Path
) -> None:
    produce_fleet(kafka_settings, topics, minutes=20)
    log = tmp_path / "workers.log"
    run_to_end(kafka_settings, topics, log, f"{kafka_settings.topic_prefix}processor")
    run_to_end(kafka_settings, topics, log, f"{kafka_settings.topic_prefix}canary")
    want = reference_transitions(load_rule_files([RULES]), kafka_settings, topics)
    assert want
    assert alerts(kafka_settings, topics) == sorted(want * 2), "each group's own full run"


def test_offsets_reset_to_the_start_reprocess_from_a_fresh_state(
    kafka_settings: KafkaSettings, topics: Catalog, tmp_path: Path
) -> None:
    produce_fleet(kafka_settings, topics, minutes=20)
    log = tmp_path / "workers.log"
    group = f"{kafka_settings.topic_prefix}processor"
    run_to_end(kafka_settings, topics, log, group)

    # what `kafka-consumer-groups --reset-offsets --to-earliest` does; the killed static
    # member holds the group until its session times out
    admin = make_admin(kafka_settings)
    start = [TopicPartition(topics.name(t), p, 0) for t in ("metrics", "logs") for p in range(3)]
    deadline = time.monotonic() + 60
    while True:
        request = ConsumerGroupTopicPartitions(group, start)
        try:
            done = admin.alter_consumer_group_offsets([request])[group].result()
            errors = [tp.error for tp in done.topic_partitions if tp.error]
        except KafkaException as exc:
            errors = [exc]
        if not errors:
            break
        assert time.monotonic() < deadline, errors
        time.sleep(1)

    committed = make_consumer(kafka_settings, group).committed(start, timeout=10)
    assert [tp.offset for tp in committed] == [0] * len(start)
    run_to_end(kafka_settings, topics, log, group)
    want = reference_transitions(load_rule_files([RULES]), kafka_settings, topics)
    assert alerts(kafka_settings, topics) == sorted(want * 2), "the rerun repeats the first run"

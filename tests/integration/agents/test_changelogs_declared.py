"""The agents worker creates its tables' changelogs before faust joins its group: once
`declare` returns, a new client already lists and reads every partition of them."""

from __future__ import annotations

from pathlib import Path

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import ConfigResource  # type: ignore[attr-defined]

from harness.incidents import EXAMPLE_CONFIG
from schemas.config import load_config
from streams.agents.app import build_app
from streams.agents.changelogs import declare
from streams.catalog import Catalog
from streams.kafka import make_admin
from streams.settings import KafkaSettings


def test_declared_changelogs_are_listed_and_served_at_once(
    kafka_settings: KafkaSettings, topics: Catalog, tmp_path: Path
) -> None:
    app = build_app(kafka_settings, load_config([EXAMPLE_CONFIG]), datadir=str(tmp_path))
    prefix = kafka_settings.topic_prefix
    names = [f"{prefix}tocsin-agents-groups-changelog",
             f"{prefix}tocsin-agents-heartbeats-changelog"]  # fmt: skip
    assert declare(kafka_settings, app) == sorted(names)

    # a client that did not create them: what faust's own consumer asks first
    fresh = Consumer(kafka_settings.client_config() | {"group.id": f"{prefix}probe"})
    try:
        listed = fresh.list_topics(timeout=10).topics
        for name, spec in zip(names, ("incident-work", "heartbeats"), strict=True):
            partitions = listed[name].partitions
            assert len(partitions) == topics.get(spec).partitions
            assert all(p.leader >= 0 for p in partitions.values())
            for p in partitions:
                assert fresh.get_watermark_offsets(TopicPartition(name, p), timeout=10) == (0, 0)
    finally:
        fresh.close()

    admin = make_admin(kafka_settings)
    for name in names:
        resource = ConfigResource(ConfigResource.Type.TOPIC, name)
        configs = admin.describe_configs([resource])[resource].result(timeout=10)
        assert configs["cleanup.policy"].value == "compact", "the latest state per group"
    assert declare(kafka_settings, app) == [], "a worker that starts again creates nothing"

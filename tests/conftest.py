"""Shared fixtures. Integration tiers talk to the real broker the project's tool starts."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import structlog

from streams.admin import create_topics, delete_prefixed
from streams.broker.local import LocalBroker, port_of
from streams.catalog import Catalog
from streams.kafka import broker_reachable, make_admin
from streams.settings import KafkaSettings

BOOTSTRAP = os.environ.get("TOCSIN_BOOTSTRAP_SERVERS", "127.0.0.1:9092")


@pytest.fixture(autouse=True)
def _logging_as_structlog_starts() -> Iterator[None]:
    """No test logs through another's configuration (a CLI test's level, say), which
    would hide what a test captures with structlog.testing.capture_logs."""
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()


@pytest.fixture(scope="session")
def broker() -> Iterator[str]:
    """The bootstrap address of a running broker; started by our tool if none answers."""
    settings = KafkaSettings(bootstrap_servers=BOOTSTRAP)
    started: LocalBroker | None = None
    if not broker_reachable(settings):
        started = LocalBroker(port=port_of(BOOTSTRAP))
        started.start()
    yield BOOTSTRAP
    # only a broker this session launched: a running one that was merely slow to answer
    # (a loaded machine) belongs to whoever started it
    if started is not None and started.launched:
        started.stop()


@pytest.fixture
def kafka_settings(broker: str) -> Iterator[KafkaSettings]:
    """Settings with a topic prefix unique to the test, so tests never see each other's data.

    The topics a test created under its prefix are deleted afterwards, so a developer's
    broker does not grow by hundreds of topics a run (and its heap with them)."""
    prefix = f"t{uuid.uuid4().hex[:10]}."
    settings = KafkaSettings(bootstrap_servers=broker, topic_prefix=prefix, partitions=3)
    yield settings
    try:
        delete_prefixed(make_admin(settings), prefix)
    except Exception as exc:  # a test that stopped the broker must not fail on cleanup
        print(f"\ncould not delete topics {prefix}*: {exc}")


@pytest.fixture
def topics(kafka_settings: KafkaSettings) -> Catalog:
    catalog = Catalog(kafka_settings)
    create_topics(make_admin(kafka_settings), catalog)
    return catalog

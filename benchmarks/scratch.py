"""Topics of one benchmark run, deleted when it ends.

Every run creates its own prefixed topics; left behind, they pile up on the broker
(hundreds of topics, thousands of partitions after a few `make bench`), and the
broker's metadata work grows with them: the agents benchmark measured ~2x the
broker CPU per record on a broker holding 839 scratch topics than on a fresh one.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from streams.admin import create_topics, delete_prefixed
from streams.catalog import Catalog
from streams.kafka import make_admin
from streams.settings import KafkaSettings


def topic_count(bootstrap: str) -> int:
    """Topics on the broker, reported beside the figures measured on it."""
    admin = make_admin(KafkaSettings(bootstrap_servers=bootstrap))
    return len(admin.list_topics(timeout=30).topics)


@contextmanager
def scratch(bootstrap: str, stem: str, **settings: Any) -> Iterator[KafkaSettings]:
    """Settings with a fresh topic prefix and the catalog's topics created; every topic
    with that prefix is deleted afterwards, the ones the workers created included."""
    s = KafkaSettings(bootstrap_servers=bootstrap, topic_prefix=f"{stem}{uuid.uuid4().hex[:6]}.",
                      **settings)  # fmt: skip
    admin = make_admin(s)
    create_topics(admin, Catalog(s))
    try:
        yield s
    finally:
        delete_prefixed(admin, s.topic_prefix)

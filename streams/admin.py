"""Create the catalog's topics idempotently and report drift from it."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaException, TopicPartition
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    ConfigResource,
    NewTopic,
    OffsetSpec,
)

from streams.catalog import Catalog, ResolvedTopic

TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class Drift:
    topic: str
    problem: str

    def __str__(self) -> str:
        return f"{self.topic}: {self.problem}"


def create_topics(admin: AdminClient, catalog: Catalog) -> list[str]:
    """Create every missing topic; return the names created (empty when all existed)."""
    return create_missing(admin, [
        NewTopic(t.name, num_partitions=t.partitions, replication_factor=t.replication_factor,
                 config=t.configs())
        for t in catalog.resolved()
    ])  # fmt: skip


def create_missing(admin: AdminClient, topics: list[NewTopic]) -> list[str]:
    """Create those of `topics` that do not exist, and return once every partition of them
    is led and served; the names created (empty when all existed)."""
    existing = set(admin.list_topics(timeout=TIMEOUT_S).topics)
    wanted = [t for t in topics if t.topic not in existing]
    if not wanted:
        return []
    futures = admin.create_topics(wanted, operation_timeout=TIMEOUT_S)
    created: list[str] = []
    for name, fut in futures.items():
        try:
            fut.result()
            created.append(name)
        except KafkaException as exc:
            # A concurrent creator won the race: that is success for an idempotent create.
            if exc.args[0].name() != "TOPIC_ALREADY_EXISTS":
                raise
    _wait_until_led(admin, {t.topic: t.num_partitions for t in wanted})
    _wait_until_served(admin, {t.topic: t.num_partitions for t in wanted})
    return sorted(created)


def _wait_until_led(admin: AdminClient, partitions: dict[str, int]) -> None:
    """The create future completes when the controller committed the topic; the broker
    learns of it a moment later, and a client that subscribes or produces in between gets
    UNKNOWN_TOPIC_OR_PART (seen on a loaded machine). Wait until every partition has a leader."""
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        topics = admin.list_topics(timeout=TIMEOUT_S).topics
        pending = [
            name
            for name, count in partitions.items()
            if name not in topics
            or len(topics[name].partitions) < count
            or any(p.leader < 0 for p in topics[name].partitions.values())
        ]
        if not pending:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"topics created but without a leader after {TIMEOUT_S:.0f} s: "
                               + ", ".join(sorted(pending)))  # fmt: skip
        time.sleep(0.1)


def _wait_until_served(admin: AdminClient, partitions: dict[str, int]) -> None:
    """A leader in the metadata is not yet a leader that serves: its broker takes the
    partition on a moment later, and an offset lookup in between is told NOT_LEADER
    (seen by a worker started right after create returned). Wait until every partition
    answers one."""
    deadline = time.monotonic() + TIMEOUT_S
    pending = [TopicPartition(name, p) for name, n in partitions.items() for p in range(n)]
    while True:
        latest = OffsetSpec.latest()  # type: ignore[no-untyped-call]
        futures = admin.list_offsets({tp: latest for tp in pending},
                                     request_timeout=TIMEOUT_S)  # fmt: skip
        failed: list[TopicPartition] = []
        last: BaseException | None = None
        for tp, fut in futures.items():
            try:
                fut.result()
            except KafkaException as exc:
                failed.append(TopicPartition(tp.topic, tp.partition))
                last = exc
        if not failed:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(failed)} partitions created but not served after "
                               f"{TIMEOUT_S:.0f} s: {last}")  # fmt: skip
        pending = failed
        time.sleep(0.1)


def check_topics(admin: AdminClient, catalog: Catalog) -> list[Drift]:
    """Compare the cluster with the catalog: missing topics, partitions, configs."""
    metadata = admin.list_topics(timeout=TIMEOUT_S).topics
    drifts: list[Drift] = []
    present: list[ResolvedTopic] = []
    for topic in catalog.resolved():
        meta = metadata.get(topic.name)
        if meta is None:
            drifts.append(Drift(topic.name, "missing"))
            continue
        present.append(topic)
        if len(meta.partitions) != topic.partitions:
            drifts.append(
                Drift(topic.name, f"partitions {len(meta.partitions)}, expected {topic.partitions}")
            )
    drifts += _under_replicated(metadata, catalog)
    if not present:
        return sorted(drifts, key=lambda d: (d.topic, d.problem))
    resources = [ConfigResource(ConfigResource.Type.TOPIC, t.name) for t in present]
    described: dict[Any, Any] = admin.describe_configs(resources, request_timeout=TIMEOUT_S)
    by_name = {t.name: t for t in present}
    for resource, fut in described.items():
        topic = by_name[resource.name]
        actual = fut.result()
        for key, expected in topic.configs().items():
            entry = actual.get(key)
            value = entry.value if entry is not None else None
            if value != expected:
                drifts.append(Drift(topic.name, f"{key}={value}, expected {expected}"))
    return sorted(drifts, key=lambda d: (d.topic, d.problem))


def _under_replicated(metadata: dict[str, Any], catalog: Catalog) -> list[Drift]:
    """Topics under the prefix with fewer replicas than the settings ask: the catalog's,
    and those the agents' faust app creates (its changelogs, whose loss would lose the
    incidents' state)."""
    want = catalog.replication_factor
    drifts = []
    for name, meta in metadata.items():
        internal = not catalog.prefix and name.startswith("__")  # the cluster's own
        if not name.startswith(catalog.prefix) or internal or not meta.partitions:
            continue
        have = min(len(p.replicas) for p in meta.partitions.values())
        if have < want:
            drifts.append(Drift(name, f"replication factor {have}, expected {want}"))
    return drifts


def delete_prefixed(admin: AdminClient, prefix: str) -> list[str]:
    """Delete every topic whose name starts with `prefix` (a scratch run's topics, faust's
    changelog and repartition topics included); return the names deleted."""
    if not prefix:
        raise ValueError("refusing to delete every topic: the prefix is empty")
    names = sorted(t for t in admin.list_topics(timeout=TIMEOUT_S).topics if t.startswith(prefix))
    if not names:
        return []
    deleted: list[str] = []
    for name, fut in admin.delete_topics(names, operation_timeout=TIMEOUT_S).items():
        try:
            fut.result()
            deleted.append(name)
        except KafkaException as exc:
            if exc.args[0].name() != "UNKNOWN_TOPIC_OR_PART":  # gone already
                raise
    return sorted(deleted)

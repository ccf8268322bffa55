"""Create the catalog's topics idempotently and report drift from it."""

from __future__ import annotations

import time
from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaException, TopicPartition
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    ConfigResource,
    NewTopic,
    OffsetSpec,
)

from streams.catalog import Catalog

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


def check_topics(admin: AdminClient, catalog: Catalog,
                 changelogs: Sequence[NewTopic] = ()) -> list[Drift]:  # fmt: skip
    """Compare the cluster with the catalog: missing topics, partitions, configs, copies;
    and the configs of those of the agents' `changelogs` that exist (the agents create
    them when they start: one not there yet is no drift)."""
    metadata = admin.list_topics(timeout=TIMEOUT_S).topics
    drifts: list[Drift] = []
    for topic in catalog.resolved():
        meta = metadata.get(topic.name)
        if meta is None:
            drifts.append(Drift(topic.name, "missing"))
        elif len(meta.partitions) != topic.partitions:
            drifts.append(
                Drift(topic.name, f"partitions {len(meta.partitions)}, expected {topic.partitions}")
            )
    drifts += under_replicated(metadata, catalog)
    expected = expected_configs(metadata, catalog, changelogs)
    drifts += [Drift(c.topic, f"{c.key}={c.actual}, expected {c.expected}")
               for c in config_drift(admin, expected)]  # fmt: skip
    return sorted(drifts, key=lambda d: (d.topic, d.problem))


@dataclass(frozen=True, slots=True)
class ConfigDrift:
    topic: str
    key: str
    actual: str | None  # None: not set, not even by a default
    expected: str


def expected_configs(present: Container[str], catalog: Catalog,
                     changelogs: Sequence[NewTopic] = ()) -> dict[str, dict[str, str]]:  # fmt: skip
    """The configs each topic of the catalog or the `changelogs` is expected to have, for
    those `present` on the cluster."""
    out = {t.name: t.configs() for t in catalog.resolved() if t.name in present}
    out |= {t.topic: dict(t.config or {}) for t in changelogs if t.topic in present}
    return out


def config_drift(admin: AdminClient, expected: Mapping[str, Mapping[str, str]]
                 ) -> list[ConfigDrift]:  # fmt: skip
    """The keys of `expected` (topic -> its configs) whose value on the cluster differs;
    keys not expected are not compared."""
    if not expected:
        return []
    resources = [ConfigResource(ConfigResource.Type.TOPIC, name) for name in expected]
    described: dict[Any, Any] = admin.describe_configs(resources, request_timeout=TIMEOUT_S)
    out: list[ConfigDrift] = []
    for resource, fut in described.items():
        actual = fut.result()
        for key, want in expected[resource.name].items():
            entry = actual.get(key)
            value = entry.value if entry is not None else None
            if value != want:
                out.append(ConfigDrift(resource.name, key, value, want))
    return sorted(out, key=lambda c: (c.topic, c.key))


def under_replicated(metadata: dict[str, Any], catalog: Catalog) -> list[Drift]:
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

"""`tocsin topics fix`: repair what drifted from the catalog where that is safe, and
name what is left and why.

- Missing catalog topics are created, as by `topics create`.
- Configs that differ from the catalog's, or from the agents' changelogs' (as the agents
  create them), are set to the expected values, the expected keys only; except a
  `min.insync.replicas` above the topic's replica count, which would refuse every write
  with acks=all: it waits for the copies.
- Partition counts are never changed: keys are hashed to partitions.
- Copies missing from topics under the prefix are planned (replicas_plan.py) for Kafka's
  own reassignment tool, which confluent-kafka cannot replace.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
)

from streams.admin import (
    TIMEOUT_S,
    ConfigDrift,
    Drift,
    config_drift,
    create_topics,
    expected_configs,
    under_replicated,
)
from streams.catalog import Catalog
from streams.replicas_plan import Reassignment, plan, plan_json

INSYNC = "min.insync.replicas"
MORE_PARTITIONS = (
    "not changed: keys are hashed to partitions, and more partitions would move keys away "
    "from the state kept for them (the agents' incident groups, the processor's windows)"
)
FEWER_PARTITIONS = "not changed: Kafka cannot take partitions away from a topic"


@dataclass
class Repair:
    """What `fix` did, or would do with --dry-run, and what it left."""

    created: list[str] = field(default_factory=list)
    set: list[ConfigDrift] = field(default_factory=list)
    left: list[Drift] = field(default_factory=list)
    plan: list[Reassignment] = field(default_factory=list)

    @property
    def done(self) -> bool:
        """Nothing left: a plan is left too, to be executed."""
        return not self.left and not self.plan


def settable(drift: ConfigDrift, replicas: int) -> bool:
    """Whether `fix` may set this config on a topic whose smallest partition has
    `replicas` replicas: a `min.insync.replicas` above it would refuse every acks=all
    write to the topic."""
    return drift.key != INSYNC or int(drift.expected) <= replicas


def repair(admin: AdminClient, catalog: Catalog, changelogs: Sequence[NewTopic] = (), *,
           dry_run: bool = False) -> Repair:  # fmt: skip
    """Repair the cluster against the catalog and the agents' `changelogs`; with
    `dry_run`, change nothing and say what would be done."""
    out = Repair()
    metadata = admin.list_topics(timeout=TIMEOUT_S)
    if dry_run:
        out.created = [t.name for t in catalog.resolved() if t.name not in metadata.topics]
    else:
        out.created = create_topics(admin, catalog)
        if out.created:
            metadata = admin.list_topics(timeout=TIMEOUT_S)
    topics = metadata.topics
    out.left += _partitions_left(topics, catalog)
    out.plan, left = _replicas(metadata, catalog)
    out.left += left
    out.set, left = _configs(admin, topics, expected_configs(topics, catalog, changelogs),
                             {m.topic for m in out.plan})  # fmt: skip
    out.left += left
    if out.set and not dry_run:
        refused = _set_configs(admin, out.set)
        out.set = [d for d in out.set if d not in refused]
        out.left += [Drift(d.topic, f"{d.key}={d.actual}, expected {d.expected}: the cluster "
                                   f"refused it: {why}") for d, why in refused.items()]  # fmt: skip
    out.left.sort(key=lambda x: (x.topic, x.problem))
    return out


def _replicas(metadata: Any, catalog: Catalog) -> tuple[list[Reassignment], list[Drift]]:
    """The plan that gives the topics under the prefix their copies, or why there is none."""
    topics, brokers = metadata.topics, metadata.brokers
    under = under_replicated(topics, catalog)
    cluster = {(name, p.id): p.replicas for name, meta in topics.items()
               for p in meta.partitions.values()}  # fmt: skip
    moves = plan(cluster, brokers, [d.topic for d in under], catalog.replication_factor)
    if moves is not None:
        return moves, []
    why = f"the cluster has {_count(len(brokers), 'broker')}"
    return [], [Drift(d.topic, f"{d.problem}: {why}") for d in under]


def _configs(admin: AdminClient, topics: dict[str, Any], expected: dict[str, dict[str, str]],
             planned: set[str]) -> tuple[list[ConfigDrift], list[Drift]]:  # fmt: skip
    """The configs to set, and those left until the topic has the copies they need."""
    replicas = {name: min(len(p.replicas) for p in meta.partitions.values())
                for name, meta in topics.items() if meta.partitions}  # fmt: skip
    to_set: list[ConfigDrift] = []
    left: list[Drift] = []
    for d in config_drift(admin, expected):
        have = replicas.get(d.topic, 0)  # no partitions listed: a topic being deleted
        if settable(d, have):
            to_set.append(d)
            continue
        why = (
            f"{d.key}={d.actual}, expected {d.expected}: not set while the topic has "
            f"{_count(have, 'replica')} (every acks=all write would be refused)"
        )
        if d.topic in planned:
            why += "; run fix again after the reassignment"
        left.append(Drift(d.topic, why))
    return to_set, left


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _partitions_left(topics: dict[str, Any], catalog: Catalog) -> list[Drift]:
    out = []
    for topic in catalog.resolved():
        meta = topics.get(topic.name)
        if meta is None or len(meta.partitions) == topic.partitions:
            continue
        have = len(meta.partitions)
        why = MORE_PARTITIONS if have < topic.partitions else FEWER_PARTITIONS
        out.append(Drift(topic.name, f"partitions {have}, expected {topic.partitions}: {why}"))
    return out


def _set_configs(admin: AdminClient, drifts: list[ConfigDrift]) -> dict[ConfigDrift, str]:
    """Set the expected values, one request per topic, and return once the cluster
    describes them (a `topics check` right after sees them); those refused, with why."""
    by_topic: dict[str, list[ConfigDrift]] = {}
    for d in drifts:
        by_topic.setdefault(d.topic, []).append(d)
    resources = [ConfigResource(ConfigResource.Type.TOPIC, topic, incremental_configs=[
        ConfigEntry(d.key, d.expected, incremental_operation=AlterConfigOpType.SET)
        for d in ds]) for topic, ds in by_topic.items()]  # fmt: skip
    refused: dict[ConfigDrift, str] = {}
    futures: dict[Any, Any] = admin.incremental_alter_configs(resources, request_timeout=TIMEOUT_S)
    for resource, fut in futures.items():
        try:
            fut.result()
        except KafkaException as exc:
            refused |= {d: str(exc.args[0].str()) for d in by_topic[resource.name]}
    applied = {t: {d.key: d.expected for d in ds if d not in refused}
               for t, ds in by_topic.items()}  # fmt: skip
    _wait_until_described(admin, {t: c for t, c in applied.items() if c})
    return refused


def _wait_until_described(admin: AdminClient, configs: dict[str, dict[str, str]]) -> None:
    """A broker learns of a config change from the controller a moment after the change
    is acknowledged."""
    deadline = time.monotonic() + TIMEOUT_S
    while (pending := config_drift(admin, configs)) and time.monotonic() < deadline:
        time.sleep(0.1)
    if pending:
        raise TimeoutError(f"configs set but not described after {TIMEOUT_S:.0f} s: "
                           + ", ".join(f"{d.topic} {d.key}" for d in pending))  # fmt: skip


def write_plan(path: Path, moves: Sequence[Reassignment]) -> None:
    """One partition a line: a long plan stays readable before it is executed."""
    doc = plan_json(moves)
    rows = ",\n".join(f"  {json.dumps(p)}" for p in doc["partitions"])
    path.write_text(f'{{"version": {doc["version"]}, "partitions": [\n{rows}\n]}}\n')


def plan_commands(bootstrap: str, path: Path) -> list[str]:
    """The commands that execute the plan, then tell whether it is done."""
    base = (f"kafka-reassign-partitions.sh --bootstrap-server {bootstrap} "
            f"--reassignment-json-file {path}")  # fmt: skip
    return [f"{base} --execute", f"{base} --verify"]

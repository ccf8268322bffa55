"""A reassignment plan that gives partitions the copies the settings ask for, in the JSON
Kafka's `kafka-reassign-partitions.sh` executes: confluent-kafka's admin client cannot
move replicas itself.

Each partition keeps its replicas in their order, so its leader stays first and stays
leader once the move is done; the copies added go to the brokers that hold the fewest
replicas in the whole cluster, so a plan for many partitions spreads them instead of
piling them on one broker.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Partition = tuple[str, int]  # topic, partition


@dataclass(frozen=True, slots=True)
class Reassignment:
    topic: str
    partition: int
    replicas: tuple[int, ...]


def plan(cluster: Mapping[Partition, Sequence[int]], brokers: Iterable[int],
         topics: Iterable[str], factor: int) -> list[Reassignment] | None:  # fmt: skip
    """The partitions of `topics` with fewer than `factor` replicas, each with the
    replicas it should have. `cluster` is every partition of the cluster with its
    replicas (the load each broker carries), `brokers` the brokers that can take a copy.
    None when there are fewer brokers than `factor`: no plan can reach it."""
    live = sorted(set(brokers))
    if len(live) < factor:
        return None
    load = Counter(b for replicas in cluster.values() for b in replicas)
    wanted = set(topics)
    out: list[Reassignment] = []
    for topic, partition in sorted(p for p in cluster if p[0] in wanted):
        replicas = list(cluster[(topic, partition)])
        while len(replicas) < factor:
            # fewer than `factor` replicas and at least `factor` brokers: one is free
            added = min((b for b in live if b not in replicas), key=lambda b: (load[b], b))
            replicas.append(added)
            load[added] += 1
        if len(replicas) > len(cluster[(topic, partition)]):
            out.append(Reassignment(topic, partition, tuple(replicas)))
    return out


def plan_json(moves: Sequence[Reassignment]) -> dict[str, Any]:
    """The plan as `kafka-reassign-partitions.sh --reassignment-json-file` reads it."""
    return {"version": 1, "partitions": [
        {"topic": m.topic, "partition": m.partition, "replicas": list(m.replicas)}
        for m in moves
    ]}  # fmt: skip

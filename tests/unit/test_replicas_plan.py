"""The reassignment plan `tocsin topics fix` writes for kafka-reassign-partitions.sh."""

from __future__ import annotations

from collections import Counter

from streams.replicas_plan import Reassignment, plan, plan_json


def test_each_partition_keeps_its_replicas_in_order_and_its_leader_first() -> None:
    cluster = {("t.a", 0): [3, 1], ("t.a", 1): [2]}
    moves = plan(cluster, [1, 2, 3, 4], ["t.a"], 3)
    assert moves is not None
    by_partition = {m.partition: m.replicas for m in moves}
    assert by_partition[0][:2] == (3, 1)
    assert by_partition[1][0] == 2
    assert all(len(set(r)) == 3 for r in by_partition.values())


def test_the_copies_go_to_the_least_loaded_brokers_ties_by_id() -> None:
    # broker 1 holds three replicas elsewhere, 2 holds one, 3 and 4 none
    cluster = {("other", 0): [1], ("other", 1): [1], ("other", 2): [1, 2],
               ("t.a", 0): [1]}  # fmt: skip
    moves = plan(cluster, [1, 2, 3, 4], ["t.a"], 3)
    assert moves == [Reassignment("t.a", 0, (1, 3, 4))]


def test_what_the_plan_adds_counts_as_load_for_the_next_partition() -> None:
    cluster = {("t.a", p): [1] for p in range(6)}
    moves = plan(cluster, [1, 2, 3], ["t.a"], 2)
    assert moves is not None
    added = Counter(m.replicas[1] for m in moves)
    assert added == {2: 3, 3: 3}, "spread, not piled on broker 2"
    assert [m.replicas[1] for m in moves] == [2, 3, 2, 3, 2, 3]


def test_many_partitions_spread_evenly_over_a_larger_cluster() -> None:
    cluster = {(t, p): [1 + (p % 5)] for t in ("t.a", "t.b") for p in range(30)}
    moves = plan(cluster, range(1, 6), ["t.a", "t.b"], 3)
    assert moves is not None and len(moves) == 60
    load = Counter(b for m in moves for b in m.replicas)
    # one at a time, each to the least loaded broker the partition is not on yet: the
    # last few can miss the exact balance by one
    assert max(load.values()) - min(load.values()) <= 2, load
    assert sum(load.values()) == 180


def test_partitions_with_enough_replicas_and_other_topics_are_not_in_the_plan() -> None:
    cluster = {("t.a", 0): [1, 2, 3], ("t.a", 1): [2], ("t.b", 0): [1]}
    moves = plan(cluster, [1, 2, 3], ["t.a"], 3)
    assert moves is not None
    assert [(m.topic, m.partition) for m in moves] == [("t.a", 1)]
    assert plan({("t.a", 0): [1, 2, 3]}, [1, 2, 3], ["t.a"], 3) == []


def test_no_plan_when_the_cluster_has_fewer_brokers_than_the_factor() -> None:
    assert plan({("t.a", 0): [1]}, [1, 2], ["t.a"], 3) is None


def test_a_broker_missing_from_the_metadata_keeps_its_replica_and_takes_no_new_one() -> None:
    # broker 9 is not in the cluster any more: Kafka's tool moves only what it is told
    moves = plan({("t.a", 0): [9]}, [1, 2, 3], ["t.a"], 3)
    assert moves == [Reassignment("t.a", 0, (9, 1, 2))]


def test_the_json_is_kafka_reassign_partitions_format() -> None:
    moves = [Reassignment("t.a", 0, (1, 2, 3)), Reassignment("t.a", 1, (2, 3, 1))]
    assert plan_json(moves) == {"version": 1, "partitions": [
        {"topic": "t.a", "partition": 0, "replicas": [1, 2, 3]},
        {"topic": "t.a", "partition": 1, "replicas": [2, 3, 1]},
    ]}  # fmt: skip

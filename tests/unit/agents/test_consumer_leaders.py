"""faust's consumer pointed at a stalled partition's leader: asked of the leader the
cluster names, only when its own view names another node (one that hangs)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiokafka.cluster import ClusterMetadata
from aiokafka.protocol.metadata import MetadataRequest, MetadataResponse_v1
from aiokafka.structs import TopicPartition

from streams.agents.consumer_leaders import point_at_leaders

TOPIC = "p.incident-work"


def _metadata(leaders: dict[int, int]) -> Any:
    """A broker's answer: three nodes, TOPIC's partitions led as `leaders` says."""
    brokers = [(n, "127.0.0.1", 19000 + n, None) for n in (1, 2, 3)]
    parts = [(0, p, leader, [1, 2, 3], [1, 2, 3]) for p, leader in leaders.items()]
    return MetadataResponse_v1(brokers, 1, [(0, TOPIC, False, parts)])


@dataclass
class Client:
    cluster: ClusterMetadata
    answers: dict[int, Any]
    asked: list[tuple[int, list[str]]] = field(default_factory=list)

    async def send(self, node: int, request: MetadataRequest) -> Any:
        self.asked.append((node, list(request._topics or [])))
        return self.answers[node]


@dataclass
class Thread:
    """faust's consumer thread: runs what it is given on its own loop."""

    client: Client
    calls: int = 0

    def _ensure_consumer(self) -> Any:
        return type("Consumer", (), {"_client": self.client})()

    async def call_thread(self, fun: Callable[[], Awaitable[bool]]) -> bool:
        self.calls += 1
        return await fun()


def _app(view: dict[int, int], now: dict[int, int]) -> tuple[Any, Client, Thread]:
    cluster = ClusterMetadata()
    cluster.update_metadata(_metadata(view))
    client = Client(cluster, {n: _metadata(now) for n in (1, 2, 3)})
    thread = Thread(client)
    app = type("App", (), {"consumer": type("C", (), {"_thread": thread})()})()
    return app, client, thread


def test_a_consumer_that_fetches_from_the_old_leader_is_given_the_new_leaders_view() -> None:
    # node 2 hangs: the cluster moved partition 1 to node 3, the consumer still asks 2
    app, client, _ = _app({0: 1, 1: 2, 2: 3}, {0: 1, 1: 3, 2: 3})
    assert asyncio.run(point_at_leaders(app, {(TOPIC, 0): 1, (TOPIC, 1): 3, (TOPIC, 2): 3}))
    assert client.asked == [(3, [TOPIC])], "asked of the new leader, never the hung node"
    assert client.cluster.leader_for_partition(TopicPartition(TOPIC, 1)) == 3
    assert client.cluster.leader_for_partition(TopicPartition(TOPIC, 0)) == 1


def test_a_consumer_that_knows_the_leader_is_left_alone() -> None:
    app, client, thread = _app({0: 1, 1: 3, 2: 3}, {0: 1, 1: 3, 2: 3})
    assert not asyncio.run(point_at_leaders(app, {(TOPIC, 1): 3, (TOPIC, 2): 3}))
    assert client.asked == [], "a consumer that agrees with the cluster asks no one"
    assert not asyncio.run(point_at_leaders(app, {}))
    assert thread.calls == 1, "nothing assigned: not even looked up"

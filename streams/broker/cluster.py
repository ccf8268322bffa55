"""A local KRaft cluster of several nodes, for the tests and soaks of what a production
cluster does that one broker cannot: a rolling restart, a node lost while the others
serve, partition leaders moving under load.

Each node is a `LocalBroker` (broker and controller in one process) on ports of its own,
all voters of one controller quorum and formatted with one cluster id, kept beside the
data so that a node restarted later joins the same cluster. The cluster's own topics
(consumer offsets, transaction state) keep a copy on every node.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from schemas import BrokerError
from streams.broker.local import LocalBroker, new_cluster_id


class LocalCluster:
    def __init__(self, home: Path | None = None, nodes: int = 3, port: int = 19392,
                 heap: str = "384m") -> None:  # fmt: skip
        self.home = (home or Path(os.environ.get("TOCSIN_BROKER_HOME", ".broker"))).resolve()
        self.port = port
        # node i listens on port + 2i, its controller on the port after
        voters = ",".join(f"{i + 1}@127.0.0.1:{port + 2 * i + 1}" for i in range(nodes))
        cluster_id = self._cluster_id()
        self.nodes = [self._node(i, nodes, voters, cluster_id, heap) for i in range(nodes)]

    def _node(self, i: int, nodes: int, voters: str, cluster_id: str, heap: str) -> LocalBroker:
        return LocalBroker(self.home, port=self.port + 2 * i,
                           controller_port=self.port + 2 * i + 1, heap=heap, node_id=i + 1,
                           voters=voters, cluster_id=cluster_id, replicas=nodes)  # fmt: skip

    @property
    def bootstrap(self) -> str:
        return ",".join(node.bootstrap for node in self.nodes)

    def _cluster_id(self) -> str:
        path = self.home / f"cluster-{self.port}.id"
        if not path.exists():
            self.home.mkdir(parents=True, exist_ok=True)
            path.write_text(new_cluster_id() + "\n")
        return path.read_text().strip()

    def start(self, timeout: float = 180.0) -> None:
        """Every node launched at once (none answers before a quorum of them runs), then
        each waited for."""
        for node in self.nodes:
            node.launch()
        for node in self.nodes:
            node.wait_ready(timeout)

    def stop(self) -> None:
        """Every node killed at once: a test's cluster has nothing to hand over, and the
        last nodes of a quorum stopped one by one would wait for controllers that are
        gone."""
        for node in self.nodes:
            node.kill()
        for node in self.nodes:
            node.stop()

    def reset(self) -> None:
        """Stopped, and every node's data and the cluster id gone: the next start is a
        new cluster."""
        self.stop()
        for node in self.nodes:
            node.reset()
        (self.home / f"cluster-{self.port}.id").unlink(missing_ok=True)
        cluster_id = self._cluster_id()
        for node in self.nodes:
            node.cluster_id = cluster_id

    def wait_in_sync(self, admin: AdminClient, timeout: float = 120.0) -> None:
        """Until every partition of every topic has all its replicas in sync: a node that
        has just come back has caught up, and the next may go."""
        deadline = time.monotonic() + timeout
        lagging: list[str] = []
        while time.monotonic() < deadline:
            try:
                topics = admin.list_topics(timeout=10).topics
            except KafkaException:  # a node away: asked again
                time.sleep(0.5)
                continue
            lagging = [f"{name}[{p.id}]" for name, meta in topics.items()
                       for p in meta.partitions.values()
                       if p.leader < 0 or set(p.isrs) != set(p.replicas)]  # fmt: skip
            if not lagging:
                return
            time.sleep(0.5)
        raise BrokerError(f"replicas not in sync after {timeout:.0f} s: {', '.join(lagging[:10])}")

"""The node that coordinates a worker's transactions cut off from the other two, the
worker still reaching it, and the worker's producer started anew meanwhile (a restart,
or a producer replaced after a lost transaction) with that node first to answer.

The cut-off node still names itself coordinator and refuses every call as "concurrent"
while it waits on replicas that no longer follow it; librdkafka asks it and nobody
else, for as long as the node is cut off. The worker must find the coordinator the
cluster elected and commit while the node is still cut off, and what the lost
transaction wrote must stay invisible."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import NewTopic

from streams.broker.cluster import LocalCluster
from streams.kafka import KafkaWait, make_admin, read_topic
from streams.runtime.transactions import Transactions
from streams.settings import KafkaSettings
from tests.faults.cluster.partition import CLUSTER_PORT, FIRST_UID, can_partition, cut_off
from tests.faults.cluster.under_load import TRANSACTION_LOG, coordinator_partition, on_own_cluster

# the others fence the node once its session lapses; a call not through by then asks
# every node, and the coordinator they elected aborts the lost transaction
COMMIT_LIMIT_S = 60.0


def _committed(txn: Transactions, topic: str, value: bytes, stop: threading.Event) -> None:
    """One record in every partition of `topic`, committed; a transaction that fails is
    aborted and tried again, as the workers do."""
    while not stop.is_set():
        txn.begin()
        for partition in range(3):
            txn.producer.produce(topic, value, partition=partition)
        try:
            txn.commit([], None)
            return
        except KafkaException:
            txn.abort()


def _coordinated_by(settings: KafkaSettings, node_id: int) -> str:
    """A transactional id whose coordinator is `node_id`."""
    admin = make_admin(settings)
    log = admin.list_topics(TRANSACTION_LOG, timeout=10).topics[TRANSACTION_LOG]
    for i in range(10_000):
        tid = f"cut-{uuid.uuid4().hex[:6]}-{i}"
        if log.partitions[coordinator_partition(tid, len(log.partitions))].leader == node_id:
            return tid
    raise AssertionError(f"no transactional id coordinated by node {node_id}")


def _scenario(cluster: LocalCluster) -> dict[str, object]:
    victim, others = cluster.nodes[0], cluster.nodes[1:]
    everyone = KafkaSettings(bootstrap_servers=cluster.bootstrap)
    through_others = KafkaSettings(bootstrap_servers=",".join(n.bootstrap for n in others))
    first_to_answer = KafkaSettings(bootstrap_servers=victim.bootstrap)
    topic = f"cut-{uuid.uuid4().hex[:8]}"
    admin = make_admin(everyone)
    for f in admin.create_topics([NewTopic(topic, 3, 3, config={"min.insync.replicas": "2"})
                                  ]).values():  # fmt: skip
        f.result(30)
    stop = threading.Event()

    def transactions(settings: KafkaSettings, tid: str) -> Transactions:
        conf = {"transactional.id": tid, "transaction.timeout.ms": 30_000}
        return Transactions(settings, conf, KafkaWait(tid), lambda: None, stop)

    transactions(everyone, "warm-up").init()  # the transaction log exists from here
    cluster.wait_in_sync(admin, timeout=120)
    tid = _coordinated_by(everyone, victim.node_id)
    before = transactions(first_to_answer, tid)
    before.init()
    _committed(before, topic, b"before", stop)
    before.begin()
    for partition in range(3):
        before.producer.produce(topic, b"lost", partition=partition)
    before.producer.flush(10)

    with cut_off(victim, others):
        began = time.monotonic()
        after = transactions(first_to_answer, tid)
        done: list[float] = []

        def restarted() -> None:
            after.init()
            _committed(after, topic, b"after", stop)
            done.append(time.monotonic() - began)

        worker = threading.Thread(target=restarted, daemon=True)
        worker.start()
        worker.join(COMMIT_LIMIT_S)
        stop.set()
        assert done, f"nothing committed within {COMMIT_LIMIT_S:g}s of the cut"
        seen = sorted(read_topic(through_others, topic))
    assert seen == [b"after"] * 3 + [b"before"] * 3, seen
    return {"committed after the cut (s)": round(done[0], 1)}


# a soak (`make faults`): a cluster of three brokers of its own, and iptables
@pytest.mark.faults
@pytest.mark.soak
@pytest.mark.timeout(600)
def test_a_worker_commits_while_its_transaction_coordinator_is_cut_off(tmp_path: Path) -> None:
    if why := can_partition():
        pytest.skip(why)
    print(on_own_cluster(CLUSTER_PORT, _scenario, uids=FIRST_UID))

"""A node of a three-node cluster frozen under load (SIGSTOP), against an uninterrupted
run of the same input.

A node that hangs (a long garbage collection, a stalled virtual machine, a host cut off
from the network) is worse for a client than a dead one: its connections stay open,
its kernel still takes the bytes sent to it, and nothing answers. A client learns of it
only from its own timeouts, and one that waits on it without a limit is silent for as
long as the node hangs. The others fence the node once its session lapses and take its
partitions over, so the cluster serves; the pipeline must page what arrives meanwhile
while the node is still frozen. When it wakes it still believes it leads its
partitions; it must be fenced and catch up, and nothing may be paged twice.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from streams.broker.local import LocalBroker
from streams.settings import KafkaSettings
from tests.faults.cluster.under_load import on_own_cluster, one_node_fault

CLUSTER_PORT = int(os.environ.get("TOCSIN_FROZEN_CLUSTER_PORT", "19792"))
# the longest the input that arrives while a node is frozen may take to be paged, the
# node still frozen: the cluster fences it once its session lapses, every client gives a
# request to it up after its request timeout and sends it to the new leader, and
# the processor may lose a transaction to it and rebuild its windows: about two request
# timeouts and a rebuild, with room for a busy machine
FROZEN_PAGE_LIMIT_S = 120.0


@contextmanager
def frozen(node: LocalBroker, _others: list[LocalBroker]) -> Iterator[None]:
    """`node` stopped (SIGSTOP) until the block ends; woken (SIGCONT) however it ends,
    so that a failed run leaves no process that ignores everything but SIGKILL."""
    pid = node.status().pid
    assert pid is not None, f"node {node.node_id} is not running"
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def run_frozen(reference_settings: KafkaSettings, tmp_path: Path) -> dict[str, object]:
    """The whole scenario; raises AssertionError naming what differs; returns what was
    measured."""
    return on_own_cluster(
        CLUSTER_PORT,
        lambda c: one_node_fault(
            c, reference_settings, tmp_path, "f", frozen, "frozen", FROZEN_PAGE_LIMIT_S
        ),
    )


__all__ = ["run_frozen"]

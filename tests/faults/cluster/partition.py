"""A node of a three-node cluster cut off from the other two under load, while the
clients still reach it, against an uninterrupted run of the same input.

The partition a client finds hardest: the node it talks to answers, but it can no longer
replicate, reach the controllers or learn that they fenced it, so it still says it
leads its partitions, takes writes it cannot get acknowledged by the others and answers
metadata with leaders that moved. The others elect new leaders once its session lapses
and serve. The pipeline must page what arrives meanwhile while the node is still cut
off, and when the partition heals the node must be fenced and catch up, nothing paged
twice.

Each node runs as a user of its own (`LocalBroker.uid`), and iptables drops every packet
a node's user sends to the other nodes' ports, in both directions; the clients run as
root and keep reaching every node. Needs root, iptables and setpriv (util-linux).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from streams.broker.local import LocalBroker
from streams.settings import KafkaSettings
from tests.faults.cluster.under_load import Choose, busiest, on_own_cluster, one_node_fault

CLUSTER_PORT = int(os.environ.get("TOCSIN_PARTITION_CLUSTER_PORT", "19892"))
FIRST_UID = 42_001  # the nodes' users: ids no account here uses
# as for a frozen node: the others fence it once its session lapses, and each client
# gives a request to it up after its request timeout and asks the new leader
PARTITION_PAGE_LIMIT_S = 100.0


def can_partition() -> str | None:
    """Why this machine cannot cut a node off, or None when it can."""
    if os.geteuid() != 0:
        return "needs root (iptables, and nodes run as users of their own)"
    missing = [t for t in ("iptables", "setpriv") if shutil.which(t) is None]
    return f"needs {', '.join(missing)}" if missing else None


def _rules(victim: LocalBroker, others: list[LocalBroker]) -> list[list[str]]:
    """OUTPUT rules dropping what the victim's user sends to the others' ports and what
    theirs send to its ports: no connection between them gets an answer."""

    def drop(uid: int | None, port: int) -> list[str]:
        return ["OUTPUT", "-m", "owner", "--uid-owner", str(uid), "-p", "tcp",
                "--dport", str(port), "-j", "DROP"]  # fmt: skip

    rules = []
    for other in others:
        rules += [drop(other.uid, p) for p in (victim.port, victim.controller_port)]
        rules += [drop(victim.uid, p) for p in (other.port, other.controller_port)]
    return rules


@contextmanager
def cut_off(victim: LocalBroker, others: list[LocalBroker]) -> Iterator[None]:
    """`victim` cut off from `others` until the block ends; the rules are removed however
    it ends."""
    rules = _rules(victim, others)
    for rule in rules:
        subprocess.run(["iptables", "-A", *rule], check=True)
    try:
        yield
    finally:
        for rule in rules:
            subprocess.run(["iptables", "-D", *rule], check=False)


def run_partition(reference_settings: KafkaSettings, tmp_path: Path,
                  choose: Choose = busiest) -> dict[str, object]:  # fmt: skip
    """The whole scenario, on the node `choose` names; raises AssertionError naming what
    differs; returns what was measured."""
    return on_own_cluster(
        CLUSTER_PORT,
        lambda c: one_node_fault(
            c, reference_settings, tmp_path, "p", cut_off, "cut off", PARTITION_PAGE_LIMIT_S, choose
        ),
        uids=FIRST_UID,
    )


__all__ = ["can_partition", "run_partition"]

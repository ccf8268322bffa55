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
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from streams.admin import check_topics
from streams.broker.cluster import LocalCluster
from streams.broker.local import LocalBroker
from streams.settings import KafkaSettings
from tests.faults.cluster.under_load import (
    all_running,
    led_by,
    loaded,
    longest_unready,
    on_own_cluster,
)
from tests.faults.outage.scenario import diff, same_output, settled, wait_until

CLUSTER_PORT = int(os.environ.get("TOCSIN_FROZEN_CLUSTER_PORT", "19792"))
# the longest the input that arrives while a node is frozen may take to be paged, the
# node still frozen: the cluster fences it once its session lapses, every client gives a
# request to it up after its request timeout and sends it to the new leader, and
# the processor may lose a transaction to it and rebuild its windows: about two request
# timeouts and a rebuild, with room for a busy machine
FROZEN_PAGE_LIMIT_S = 100.0
# how long a worker may say it is not ready after the node wakes
READY_AFTER_S = 60.0


@contextmanager
def frozen(node: LocalBroker) -> Iterator[None]:
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
    return on_own_cluster(CLUSTER_PORT, lambda c: _scenario(c, reference_settings, tmp_path))


def _scenario(cluster: LocalCluster, reference_settings: KafkaSettings,
              tmp_path: Path) -> dict[str, object]:  # fmt: skip
    with loaded(cluster, reference_settings, tmp_path, "f") as run:
        ref, sub, parts, admin = run.ref, run.sub, run.parts, run.admin
        # the node that leads the most: the most clients are talking to it
        victim = max(cluster.nodes, key=lambda n: led_by(admin, n))
        led = led_by(admin, victim)
        froze_at = time.monotonic()
        with frozen(victim):
            run.feed(parts[1])
            same_output(ref, sub, parts[:2])
            paged_at = time.monotonic()
            all_running(sub)
            # still frozen: the page did not wait for the node to wake
        woke_at = time.monotonic()
        cluster.wait_in_sync(admin, timeout=180)
        for worker in sub.procs:
            wait_until(lambda w=worker: sub.ready(w), READY_AFTER_S, f"{worker} ready after",  # type: ignore[misc]
                       sub)  # fmt: skip
        ready_at = time.monotonic()
        wait_until(lambda: (202, False) in run.writes.between(ready_at, time.monotonic()),
                   60, "a write accepted after the node woke", sub)  # fmt: skip
        run.feed(parts[2])
        assert run.ref_producer.flush(60) == 0
        assert run.sub_producer.flush(120) == 0, "the buffering producer lost input"
        want_notes, want_calls = same_output(ref, sub, parts)
        ended = time.monotonic()
        all_running(sub)
    readiness, writes = run.readiness, run.writes

    got_notes, got_calls = settled(sub)
    assert got_notes == want_notes, diff(want_notes, got_notes)
    assert got_calls == want_calls, diff(want_calls, got_calls)
    answers = Counter(code for code, _ in writes.between(froze_at, woke_at))
    measured: dict[str, object] = {
        "partitions the frozen node led": led,
        "paged while frozen after (s)": round(paged_at - froze_at, 1),
        "frozen for (s)": round(woke_at - froze_at, 1),
        "longest unready while frozen (s)": {
            w: round(longest_unready(readiness, w, froze_at, woke_at), 1) for w in sub.procs
        },
        "all ready after waking (s)": round(ready_at - woke_at, 1),
        "gateway answers while frozen": dict(sorted(answers.items())),
    }
    assert paged_at - froze_at <= FROZEN_PAGE_LIMIT_S, ("paged too late", measured)
    for code, retry in writes.between(froze_at, ended):
        assert code == 202 or (code in (429, 503) and retry), measured
    # the cluster served while the node was frozen: a write was accepted then
    assert answers[202] > 0, ("no write accepted while a node was frozen", measured)
    assert check_topics(admin, sub.catalog) == [], measured
    return measured


__all__ = ["run_frozen"]

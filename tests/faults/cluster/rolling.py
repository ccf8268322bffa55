"""A rolling restart of a three-node cluster under load, then one node killed, against an
uninterrupted run of the same input.

What a production cluster does at every upgrade: each node in turn is stopped (its
partitions' leadership moves to the others), started again and caught up before the
next goes. What it does on a bad day: a node dies with `kill -9`, and the others elect
new leaders for its partitions once its session lapses. With three copies of every
topic and two needed for a write, the cluster serves throughout, so the pipeline must
too: no worker exits, none is unready for long, the gateway answers every write with an
acceptance or a 429 to retry, and what is paged is exactly what the reference run on the
session's broker pages. On a worse day two nodes die together and the controller quorum
with them: nothing can be written until they are back, and the pipeline must wait it
out, answer every write meanwhile, and still page exactly what the reference pages.

The pipelines and the comparison are the broker outage's (`tests/faults/outage`).
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from confluent_kafka import Producer

from streams.admin import check_topics
from streams.broker.cluster import LocalCluster
from streams.kafka import make_admin
from streams.settings import KafkaSettings
from tests.faults.cluster.under_load import (
    all_running,
    led_by,
    loaded,
    longest_unready,
    on_own_cluster,
)
from tests.faults.outage.scenario import Pipeline, diff, same_output, settled, wait_until

CLUSTER_PORT = int(os.environ.get("TOCSIN_CLUSTER_PORT", "19392"))
# the longest a worker may say it is not ready while the cluster serves: a group whose
# coordinator moved rejoins within its session (10 s), and a consumer that missed a
# leader change hears of it at its next metadata refresh
UNREADY_LIMIT_S = 20.0
# long enough for every client to give up a request, a transaction and a session on
# the nodes that are gone
QUORUM_LOSS_S = 45.0


def run_rolling(reference_settings: KafkaSettings, tmp_path: Path) -> dict[str, object]:
    """The whole scenario; raises AssertionError naming what differs; returns what was
    measured (phases and their lengths, the longest unready stretch of each worker, the
    gateway's answers)."""
    return on_own_cluster(CLUSTER_PORT, lambda c: _scenario(c, reference_settings, tmp_path))


def _scenario(cluster: LocalCluster, reference_settings: KafkaSettings,
              tmp_path: Path) -> dict[str, object]:  # fmt: skip
    phases: list[tuple[str, float, float]] = []
    with loaded(cluster, reference_settings, tmp_path, "r") as run:
        ref, sub, parts, admin, feed = run.ref, run.sub, run.parts, run.admin, run.feed
        readiness, writes = run.readiness, run.writes
        sub_producer, ref_producer = run.sub_producer, run.ref_producer
        during = [parts[1][i::5] for i in range(5)]  # one share per fault
        started = time.monotonic()
        for node, share in zip(cluster.nodes, during, strict=False):
            at = time.monotonic()
            feed(share)
            node.stop()  # SIGTERM: a controlled shutdown hands its leadership over
            node.start()
            cluster.wait_in_sync(admin)
            phases.append((f"node {node.node_id} restarted", at, time.monotonic()))
            all_running(sub)
        victim = cluster.nodes[1]
        at = time.monotonic()
        victim.kill()
        feed(during[3])
        # the others take its partitions over once its session lapses
        wait_until(lambda: led_by(make_admin(sub.settings), victim) == 0, 60,
                   f"new leaders for node {victim.node_id}'s partitions", sub)  # fmt: skip
        served_at = time.monotonic()
        wait_until(lambda: (202, False) in writes.between(served_at, time.monotonic()),
                   30, "a write accepted while a node is dead", sub)  # fmt: skip
        victim.start()
        cluster.wait_in_sync(admin)
        phases.append((f"node {victim.node_id} killed and restarted", at, time.monotonic()))
        rolled = quorum_at = time.monotonic()
        _lose_quorum(cluster, sub, lambda: feed(during[4]), sub_producer)
        cluster.wait_in_sync(admin, timeout=180)
        back_at = time.monotonic()
        wait_until(lambda: (202, False) in writes.between(back_at, time.monotonic()),
                   60, "a write accepted after the quorum came back", sub)  # fmt: skip
        for worker in sub.procs:
            wait_until(lambda w=worker: sub.ready(w), 60, f"{worker} ready after", sub)  # type: ignore[misc]
        phases.append(("two nodes killed, the quorum lost", quorum_at, time.monotonic()))
        ended = time.monotonic()
        feed(parts[2])
        assert ref_producer.flush(60) == 0
        assert sub_producer.flush(120) == 0, "the buffering producer lost input"
        want_notes, want_calls = same_output(ref, sub, parts)
        all_running(sub)

    got_notes, got_calls = settled(sub)
    assert got_notes == want_notes, diff(want_notes, got_notes)
    assert got_calls == want_calls, diff(want_calls, got_calls)
    # while the cluster serves; without a quorum nothing can be written, and a worker
    # that says so is right
    unready = {w: longest_unready(readiness, w, started, rolled) for w in sub.procs}
    answers = {name: Counter(code for code, _ in writes.between(start, end))
               for name, start, end in phases}  # fmt: skip
    measured: dict[str, object] = {
        "phases (s)": {name: round(end - start, 1) for name, start, end in phases},
        "longest unready (s)": {w: round(s, 1) for w, s in unready.items()},
        # not bounded: without a quorum a worker that says it cannot work is right
        "longest unready without a quorum (s)": {
            w: round(longest_unready(readiness, w, rolled, ended), 1) for w in sub.procs
        },
        "gateway answers": {name: dict(sorted(c.items())) for name, c in answers.items()},
    }
    # every write answered: accepted, or refused with the time to retry after
    for code, retry in writes.between(started, ended):
        assert code == 202 or (code in (429, 503) and retry), measured
    # a node stopped in order hands its leadership over first: no write is refused
    for name, *_ in phases[:-2]:
        assert set(answers[name]) == {202}, (name, measured)
    for worker, longest in unready.items():
        assert longest <= UNREADY_LIMIT_S, (worker, measured)
    # the workers whose work is writing say they cannot while nothing can be written: an
    # operator sees the outage in their readiness (the processor, with no input
    # meanwhile, has nothing it fails to write)
    for worker in ("agents", "notifier"):
        during = readiness.between(worker, quorum_at, back_at)
        assert during and not all(during), (f"{worker} ready without a quorum", measured)
    # three copies of everything under the prefix, faust's changelogs included, and
    # two needed for a write
    assert check_topics(admin, sub.catalog) == [], measured
    return measured


def _lose_quorum(cluster: LocalCluster, sub: Pipeline, feed: Callable[[], None],
                 producer: Producer) -> None:  # fmt: skip
    """Two of the three nodes killed at once (a zone lost) for QUORUM_LOSS_S, then
    started again. The node left answers metadata requests but can neither elect a
    leader nor shrink an ISR: every write waits for replicas that are gone. The workers
    must wait it out, and nothing given to them may be lost or done twice."""
    lost = [cluster.nodes[0], cluster.nodes[2]]
    for node in lost:
        node.kill()
    feed()  # input that arrives while nothing can be written
    deadline = time.monotonic() + QUORUM_LOSS_S
    while time.monotonic() < deadline:
        all_running(sub)
        producer.poll(0.5)
    for node in lost:
        node.launch()  # together: neither answers before a quorum of controllers runs
    for node in lost:
        node.wait_ready(180)
    all_running(sub)


__all__ = ["run_rolling"]

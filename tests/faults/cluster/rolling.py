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
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import httpx
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient

from streams.admin import check_topics
from streams.broker.cluster import LocalCluster
from streams.broker.local import LocalBroker
from streams.demo.fake_slack import FakeSlack, serve
from streams.kafka import make_admin, make_producer
from streams.settings import KafkaSettings
from tests.faults.outage.scenario import (
    PROBE,
    Pipeline,
    Readiness,
    diff,
    input_parts,
    running,
    same_output,
    settled,
    topics_of,
    wait_until,
    write_config,
)
from tests.integration.connectors.support import AUTH, make_gateway

CLUSTER_PORT = int(os.environ.get("TOCSIN_CLUSTER_PORT", "19392"))
# the longest a worker may say it is not ready while the cluster serves: a group whose
# coordinator moved rejoins within its session (10 s), and a consumer that missed a
# leader change hears of it at its next metadata refresh
UNREADY_LIMIT_S = 20.0
# long enough for every client to give up a request, a transaction and a session on
# the nodes that are gone
QUORUM_LOSS_S = 45.0


@dataclass
class Writes:
    """The gateway's answers to one write every 0.2 s, on a thread: (time, status,
    whether it said when to retry)."""

    base_url: str
    answers: list[tuple[float, int, bool]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def _run(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=30) as client:
            while not self._stop.wait(0.2):
                try:
                    resp = client.post("/v1/metrics", content=PROBE, headers=AUTH)
                    code, retry = resp.status_code, "Retry-After" in resp.headers
                except httpx.HTTPError:
                    code, retry = 0, False  # no answer at all: what a client must never get
                self.answers.append((time.monotonic(), code, retry))

    @contextmanager
    def running(self) -> Iterator[Writes]:
        thread = threading.Thread(target=self._run, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join()

    def between(self, start: float, end: float) -> list[tuple[int, bool]]:
        return [(code, retry) for t, code, retry in self.answers if start <= t <= end]


def longest_unready(readiness: Readiness, worker: str, start: float, end: float) -> float:
    """The longest run of samples in which `worker` said it was not ready."""
    longest, since = 0.0, None
    for t, w, ok in readiness.samples:
        if w != worker or not start <= t <= end:
            continue
        if ok:
            since = None
        elif since is None:
            since = t
        else:
            longest = max(longest, t - since)
    return longest


def led_by(admin: AdminClient, node: LocalBroker) -> int:
    """How many partitions name `node` as their leader."""
    topics = admin.list_topics(timeout=10).topics
    return sum(p.leader == node.node_id for m in topics.values() for p in m.partitions.values())


def run_rolling(reference_settings: KafkaSettings, tmp_path: Path) -> dict[str, object]:
    """The whole scenario; raises AssertionError naming what differs; returns what was
    measured (phases and their lengths, the longest unready stretch of each worker, the
    gateway's answers)."""
    cluster = LocalCluster(port=CLUSTER_PORT)
    cluster.reset()  # a cluster of its own, new each run
    try:
        cluster.start()
        return _scenario(cluster, reference_settings, tmp_path)
    finally:
        cluster.stop()  # three brokers left running would cost every later test


def _scenario(cluster: LocalCluster, reference_settings: KafkaSettings,
              tmp_path: Path) -> dict[str, object]:  # fmt: skip
    subject_settings = KafkaSettings(bootstrap_servers=cluster.bootstrap, partitions=3,
                                     replication_factor=3,
                                     topic_prefix=f"r{uuid.uuid4().hex[:10]}.")  # fmt: skip
    config = write_config(tmp_path / "config.yaml")
    parts = input_parts()
    during = [parts[1][i::5] for i in range(5)]  # one share per fault
    ref = Pipeline("reference", reference_settings, topics_of(reference_settings),
                   FakeSlack(latency=0.02), tmp_path)  # fmt: skip
    sub = Pipeline("subject", subject_settings, topics_of(subject_settings),
                   FakeSlack(latency=0.02), tmp_path)  # fmt: skip
    admin = make_admin(subject_settings)
    phases: list[tuple[str, float, float]] = []
    with ExitStack() as stack:
        ref_url = stack.enter_context(serve(ref.slack.app()))
        sub_url = stack.enter_context(serve(sub.slack.app()))
        stack.enter_context(running(ref, sub, config=config,
                                    slack_urls=[f"{ref_url}/api/", f"{sub_url}/api/"]))  # fmt: skip
        # the gateway's own acknowledgement timeout: what a source sees in production
        gateway = make_gateway(sub.settings, max_behind=timedelta(days=3650))
        gateway_url = stack.enter_context(serve(gateway.app()))
        ref_producer = make_producer(ref.settings)
        sub_producer = make_producer(sub.settings, **{"message.timeout.ms": 0})
        for worker in ("processor", "agents", "notifier"):
            wait_until(lambda w=worker: sub.ready(w), 120, f"{worker} ready", ref, sub)  # type: ignore[misc]

        def feed(records: list[tuple[str, bytes, bytes]]) -> None:
            ref.produce(ref_producer, records)
            sub.produce(sub_producer, records)
            sub_producer.poll(0)

        feed(parts[0])
        assert sub_producer.flush(60) == 0
        wait_until(lambda: b"alert_transition" in sub.log("processor").read_bytes(), 120,
                   "the first transition", sub)  # fmt: skip
        readiness = stack.enter_context(Readiness(sub))
        writes = stack.enter_context(Writes(gateway_url).running())
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
        wait_until(lambda: led_by(make_admin(subject_settings), victim) == 0, 60,
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


def all_running(p: Pipeline) -> None:
    for worker, proc in p.procs.items():
        assert proc.poll() is None, f"{worker} exited ({proc.returncode})\n{p.tails()}"


__all__ = ["Writes", "all_running", "led_by", "longest_unready", "run_rolling"]

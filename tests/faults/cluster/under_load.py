"""What both cluster scenarios share: a three-node cluster of the scenario's own, the
same pipeline on it and on the session's broker (the reference) with the same input, a
gateway writing to it, and what is measured while a fault lasts: the workers'
readiness and the gateway's answers."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path

import httpx
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient

from harness.workers import DEFAULT_INSTANCE
from streams.admin import check_topics
from streams.broker.cluster import LocalCluster
from streams.broker.local import LocalBroker
from streams.demo.fake_slack import serve
from streams.kafka import make_admin, make_producer
from streams.runtime.exactly_once import transactional_id
from streams.settings import KafkaSettings
from tests.faults.outage.scenario import (
    PROBE,
    Pipeline,
    Readiness,
    Record,
    diff,
    input_parts,
    same_output,
    settled,
    started,
    wait_until,
)
from tests.integration.connectors.support import AUTH, make_gateway

TRANSACTION_LOG = "__transaction_state"
OFFSETS_LOG = "__consumer_offsets"  # its partitions' leaders coordinate the groups


def on_own_cluster(port: int, scenario: Callable[[LocalCluster], dict[str, object]], *,
                   uids: int | None = None) -> dict[str, object]:  # fmt: skip
    """`scenario` on a new three-node cluster on `port` and the ports after it, stopped
    however it ends: three brokers left running would cost every later test. With
    `uids`, node i runs as user `uids + i`."""
    cluster = LocalCluster(port=port)
    for i, node in enumerate(cluster.nodes):
        node.uid = None if uids is None else uids + i
    cluster.reset()
    try:
        cluster.start()
        return scenario(cluster)
    finally:
        cluster.stop()


@dataclass
class Loaded:
    """Both pipelines running and past their first transition, the gateway answering
    writes, readiness sampled."""

    ref: Pipeline
    sub: Pipeline
    parts: list[list[Record]]
    admin: AdminClient
    ref_producer: Producer
    sub_producer: Producer
    readiness: Readiness
    writes: Writes

    def feed(self, records: list[Record]) -> None:
        """The same records to both; the subject's producer buffers for as long as it
        takes, so nothing it is given is dropped."""
        self.ref.produce(self.ref_producer, records)
        self.sub.produce(self.sub_producer, records)
        self.sub_producer.poll(0)


@contextmanager
def loaded(cluster: LocalCluster, reference_settings: KafkaSettings, tmp_path: Path,
           prefix: str) -> Iterator[Loaded]:  # fmt: skip
    """Both pipelines started (the subject on `cluster`, three copies of every topic, its
    topics under `prefix` and a random suffix), the first part of the input fed to both
    and transformed by the subject's processor; the workers stopped on leaving."""
    subject_settings = KafkaSettings(bootstrap_servers=cluster.bootstrap, partitions=3,
                                     replication_factor=3,
                                     topic_prefix=f"{prefix}{uuid.uuid4().hex[:10]}.")  # fmt: skip
    with ExitStack() as stack:
        ref, sub = stack.enter_context(started(reference_settings, subject_settings, tmp_path))
        # the gateway's own acknowledgement timeout: what a source sees in production
        gateway = make_gateway(sub.settings, max_behind=timedelta(days=3650))
        gateway_url = stack.enter_context(serve(gateway.app()))
        ref_producer = make_producer(ref.settings)
        sub_producer = make_producer(sub.settings, **{"message.timeout.ms": 0})
        for worker in ("processor", "agents", "notifier"):
            wait_until(lambda w=worker: sub.ready(w), 120, f"{worker} ready", ref, sub)  # type: ignore[misc]
        parts = input_parts()
        run = Loaded(ref, sub, parts, make_admin(subject_settings), ref_producer, sub_producer,
                     Readiness(sub), Writes(gateway_url))  # fmt: skip
        run.feed(parts[0])
        assert sub_producer.flush(60) == 0
        wait_until(lambda: b"alert_transition" in sub.log("processor").read_bytes(), 120,
                   "the first transition", sub)  # fmt: skip
        stack.enter_context(run.readiness)
        stack.enter_context(run.writes.running())
        yield run


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


def coordinator_partition(key: str, partitions: int) -> int:
    """The partition of the transaction log (or the offsets log) whose leader coordinates
    the transactional id (or the group) `key`: Kafka takes Java's String.hashCode of the
    key, made non-negative, modulo the log's partitions."""
    units = key.encode("utf-16-be")
    h = 0
    for i in range(0, len(units), 2):
        h = (31 * h + int.from_bytes(units[i : i + 2], "big")) & 0xFFFFFFFF
    return (h & 0x7FFFFFFF) % partitions


# which node a one-node scenario applies its fault to
Choose = Callable[["Loaded", list[LocalBroker]], LocalBroker]


def busiest(run: Loaded, nodes: list[LocalBroker]) -> LocalBroker:
    """The node that leads the most partitions: the most clients talk to it."""
    return max(nodes, key=lambda n: led_by(run.admin, n))


def processor_coordinator(run: Loaded, nodes: list[LocalBroker]) -> LocalBroker:
    """The node that coordinates the subject processor's transactions."""
    group = f"{run.sub.settings.topic_prefix}processor"
    return _coordinator(run, nodes, TRANSACTION_LOG, transactional_id(group, DEFAULT_INSTANCE))


def processor_group_coordinator(run: Loaded, nodes: list[LocalBroker]) -> LocalBroker:
    """The node that coordinates the subject processor's consumer group: a rebalance
    there cannot store its assignment, and the processor's consumer keeps rejoining it."""
    return _coordinator(run, nodes, OFFSETS_LOG, f"{run.sub.settings.topic_prefix}processor")


def agents_coordinator(run: Loaded, nodes: list[LocalBroker]) -> LocalBroker:
    """The node that coordinates the subject agents' consumer group (faust's): their
    offsets are committed there, and it answers their heartbeats."""
    return _coordinator(run, nodes, OFFSETS_LOG, f"{run.sub.settings.topic_prefix}tocsin-agents")


def _coordinator(run: Loaded, nodes: list[LocalBroker], log_topic: str, key: str
                 ) -> LocalBroker:  # fmt: skip
    log = run.admin.list_topics(log_topic, timeout=10).topics[log_topic]
    leader = log.partitions[coordinator_partition(key, len(log.partitions))].leader
    return next(n for n in nodes if n.node_id == leader)


def led_by(admin: AdminClient, node: LocalBroker) -> int:
    """How many partitions name `node` as their leader."""
    topics = admin.list_topics(timeout=10).topics
    return sum(p.leader == node.node_id for m in topics.values() for p in m.partitions.values())


def all_running(p: Pipeline) -> None:
    for worker, proc in p.procs.items():
        assert proc.poll() is None, f"{worker} exited ({proc.returncode})\n{p.tails()}"


def majority(p: Pipeline, nodes: list[LocalBroker]) -> Pipeline:
    """`p` as read through `nodes` alone."""
    bootstrap = ",".join(n.bootstrap for n in nodes)
    return replace(p, settings=p.settings.model_copy(update={"bootstrap_servers": bootstrap}))


# the fault a one-node scenario applies: the node chosen, the other nodes
Fault = Callable[[LocalBroker, list[LocalBroker]], AbstractContextManager[None]]


def one_node_fault(cluster: LocalCluster, reference_settings: KafkaSettings, tmp_path: Path,
                   prefix: str, fault: Fault, what: str, limit_s: float,
                   choose: Choose = busiest) -> dict[str, object]:  # fmt: skip
    """Under load, `fault` on the node `choose` names (by default the one that leads the
    most partitions) until what arrived meanwhile is paged, then lifted. Asserts the pages
    equal the reference's within `limit_s` with the fault still on, the same output after
    it, no worker exited, every write answered and one accepted during the fault; returns
    what was measured, `what` naming the fault in its keys."""
    with loaded(cluster, reference_settings, tmp_path, prefix) as run:
        ref, sub, parts, admin = run.ref, run.sub, run.parts, run.admin
        victim = choose(run, cluster.nodes)
        led = led_by(admin, victim)
        began = time.monotonic()
        others = [n for n in cluster.nodes if n is not victim]
        with fault(victim, others):
            run.feed(parts[1])
            # the test reads through the other nodes: a node cut off still answers, with
            # the leaders and offsets it had (a reader that asked it saw records held back
            # that the cluster had long committed and tocsin had paged)
            try:
                same_output(ref, majority(sub, others), parts[:2])
            except AssertionError as exc:
                # input the source still holds never reached the subject's processor
                held = run.sub_producer.flush(0)
                raise AssertionError(f"{exc}\nthe source still holds {held} records") from None
            paged_at = time.monotonic()
            all_running(sub)
            # the fault still on: the page did not wait for it to end
        lifted = time.monotonic()
        cluster.wait_in_sync(admin, timeout=240)
        for worker in sub.procs:
            wait_until(lambda w=worker: sub.ready(w), 60, f"{worker} ready after",  # type: ignore[misc]
                       sub)  # fmt: skip
        ready_at = time.monotonic()
        run.feed(parts[2])
        assert run.ref_producer.flush(60) == 0
        assert run.sub_producer.flush(180) == 0, "the buffering producer lost input"
        want_notes, want_calls = same_output(ref, sub, parts)
        ended = time.monotonic()
        all_running(sub)
    readiness, writes = run.readiness, run.writes

    got_notes, got_calls = settled(sub)
    assert got_notes == want_notes, diff(want_notes, got_notes)
    assert got_calls == want_calls, diff(want_calls, got_calls)
    answers = Counter(code for code, _ in writes.between(began, lifted))
    measured: dict[str, object] = {
        f"the {what} node": victim.node_id,
        f"partitions the {what} node led": led,
        f"paged while {what} after (s)": round(paged_at - began, 1),
        f"longest unready while {what} (s)": {
            w: round(longest_unready(readiness, w, began, lifted), 1) for w in sub.procs
        },
        "all ready after (s)": round(ready_at - lifted, 1),
        f"gateway answers while {what}": dict(sorted(answers.items())),
    }
    assert paged_at - began <= limit_s, ("paged too late", measured)
    for code, retry in writes.between(began, ended):
        assert code == 202 or (code in (429, 503) and retry), measured
    assert answers[202] > 0, (f"no write accepted while a node was {what}", measured)
    assert check_topics(admin, sub.catalog) == [], measured
    return measured

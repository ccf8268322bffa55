"""A broker outage under load, against an uninterrupted run of the same input.

Two pipelines (processor, agents, notifier as real subprocesses, each notifier with
its own fake Slack) get the same input: the reference on the session's broker, which
never stops, and the subject on a broker of the test's own, stopped for the outage.
Input comes in three parts: before the outage, during it (through a producer that
buffers until the broker is back) and after it. Fleet metrics and logs feed the
processor; alerts written straight to `alerts` (as an intake would) give the agents
and the notifier enough to do. Outputs are compared as raw records, so a duplicate
shows as a count of two; notifications by id, as the notifier delivers them, and the
Slack calls they make raw.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson
from confluent_kafka import KafkaException, Producer

from schemas import Alert, Notification, decode, encode
from schemas.rules import load_rule_files
from streams.admin import create_topics
from streams.broker.local import LocalBroker
from streams.catalog import Catalog
from streams.demo.fake_slack import FakeSlack, serve
from streams.demo.workload import Fleet
from streams.kafka import make_admin, make_producer
from streams.settings import KafkaSettings
from tests.integration.connectors.support import AUTH, make_gateway
from tests.processor_support import (
    START,
    health_port,
    kill9,
    read_all,
    reference_transitions,
    start_worker,
    wait_for_lag_zero,
)

RULES = Path("rules/default.yaml")
CONFIG = Path("examples/config/tocsin.yaml")
OUTAGE_PORT = int(os.environ.get("TOCSIN_OUTAGE_BROKER_PORT", "19292"))
FLEET_MINUTES = 30
ALERTS_PER_PART = 120
# a sample no rule reads, dated at the fleet's start: it changes no transition
PROBE = orjson.dumps({"name": "outage_probe", "value": 1, "time": START.isoformat()})
Record = tuple[str, bytes, bytes]  # catalog topic name, key, value


def own_broker() -> LocalBroker:
    """A broker only this test stops (never the session's shared one)."""
    return LocalBroker(port=OUTAGE_PORT)


def write_config(path: Path) -> Path:
    """The example config, with every timer far beyond the test: what is paged then
    depends on the alerts alone, not on when they arrive, so an outage that delays
    them must not change it."""
    text = CONFIG.read_text()
    for old, new in (("timeout: 5m", "timeout: 2h"), ("timeout: 10m", "timeout: 2h"),
                     ("group_wait: 30s", "group_wait: 0s"),
                     ("group_interval: 5m", "group_interval: 2h"),
                     ("flap_threshold: 6", "flap_threshold: 64")):  # fmt: skip
        assert old in text, old
        text = text.replace(old, new)
    # an inhibition depends on which of two alerts the agents see first, which a delay
    # may change; the same holds for Alertmanager, and it is not what this test is about
    head, sep, rest = text.partition("\ninhibitions:\n")
    assert sep, "inhibitions"
    text = head + "\n" + rest[rest.index("\n\n") + 2 :]
    path.write_text(text)
    return path


def input_parts() -> list[list[Record]]:
    """Three parts of input (before, during, after the outage), the same for both runs."""
    ticks = list(Fleet(START).ticks(FLEET_MINUTES))
    parts: list[list[Record]] = [[], [], []]
    for i, tick in enumerate(ticks):
        part = parts[min(2, 3 * i // len(ticks))]
        part += [("metrics", m.series_key().encode(), encode(m)) for m in tick.metrics]
        part += [("logs", r.labels["service"].encode(), encode(r)) for r in tick.logs]
    at = datetime(2026, 1, 1, tzinfo=UTC)
    for p, part in enumerate(parts):
        for i in range(ALERTS_PER_PART):
            n = p * ALERTS_PER_PART + i
            # hosts repeat across parts: later alerts join, re-fire or resolve incidents
            # that opened before the outage
            host, service = f"vol-{n % 50:02d}", ("search", "checkout")[n % 2]
            status = "resolved" if p == 2 and i % 3 == 0 else "firing"
            alert = Alert(
                event_id=f"outage-{n}", fingerprint=f"disk-{service}-{host}",
                status=status, rule="disk_full",  # type: ignore[arg-type]
                severity="critical", summary=f"disk full on {host}", value=99.0,
                threshold=95.0, labels={"alertname": "disk_full", "service": service,
                                        "host": host},
                starts_at=at, ends_at=at + timedelta(minutes=5) if status == "resolved" else None,
            )  # fmt: skip
            part.append(("alerts", alert.fingerprint.encode(), encode(alert)))
    return parts


@dataclass
class Pipeline:
    """The three workers of one run, and where they log."""

    name: str
    settings: KafkaSettings
    catalog: Catalog
    slack: FakeSlack
    logs: Path
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)

    def log(self, worker: str) -> Path:
        return self.logs / f"{self.name}-{worker}.log"

    def tails(self) -> str:
        return "\n".join(f"--- {w}\n{self.log(w).read_text()[-2500:]}" for w in self.procs)

    def produce(self, producer: Producer, records: list[Record]) -> None:
        for topic, key, value in records:
            while True:
                try:
                    producer.produce(self.catalog.name(topic), key=key, value=value)
                    break
                except BufferError:
                    producer.poll(0.1)
            producer.poll(0)

    def ready(self, worker: str) -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{self.ports[worker]}/readyz", timeout=2).is_success
        except httpx.HTTPError:
            return False

    def alerts(self) -> list[bytes]:
        return [v for vs in read_all(self.settings, self.catalog.name("alerts")).values()
                for v in vs]  # fmt: skip

    def notifications(self) -> Counter[str]:
        raw = read_all(self.settings, self.catalog.name("notifications"))
        return Counter(decode(Notification, v).notification_id for vs in raw.values() for v in vs)

    def slack_calls(self) -> Counter[tuple[str, str]]:
        return Counter((m, str(a.get("channel") or a.get("users") or ""))
                       for m, a in list(self.slack.calls))  # fmt: skip


def _env(settings: KafkaSettings, **extra: str) -> dict[str, str]:
    return {**os.environ, "TOCSIN_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
            "TOCSIN_TOPIC_PREFIX": settings.topic_prefix,
            "TOCSIN_PARTITIONS": str(settings.partitions), "TOCSIN_LOG_FORMAT": "json",
            "TOCSIN_REPLICATION_FACTOR": str(settings.replication_factor), **extra}  # fmt: skip


def _spawn(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "streams.cli.main", *cmd], env=env,
                            stdout=log.open("ab"), stderr=subprocess.STDOUT,
                            start_new_session=True)  # fmt: skip


@contextmanager
def running(*pipelines: Pipeline, config: Path, slack_urls: list[str]) -> Iterator[None]:
    """All workers of all pipelines started at once (start-up is most of the wait)."""
    try:
        for p, url in zip(pipelines, slack_urls, strict=True):
            # small batches: the processor is still at work (transactions open, commits
            # in flight) when the broker stops
            p.procs["processor"] = start_worker(p.settings, RULES, p.log("processor"),
                                                checkpoint_every=1.0, batch_size=300)  # fmt: skip
            p.procs["agents"] = _spawn(
                ["run", "agents", "--config", str(config), "--tick-every", "0.5",
                 "--health-port", "0", "--datadir", str(p.logs / f"{p.name}-faust")],
                _env(p.settings), p.log("agents"))  # fmt: skip
            p.procs["notifier"] = _spawn(["run", "notifier", "--health-port", "0"],
                                         _env(p.settings, TOCSIN_SLACK_BASE_URL=url),
                                         p.log("notifier"))  # fmt: skip
        for p in pipelines:
            for worker in p.procs:
                p.ports[worker] = health_port(p.log(worker), timeout=90)
        yield
    finally:
        for p in pipelines:
            for proc in p.procs.values():
                kill9(proc)


@contextmanager
def started(reference_settings: KafkaSettings, subject_settings: KafkaSettings,
            tmp_path: Path) -> Iterator[tuple[Pipeline, Pipeline]]:  # fmt: skip
    """The reference's and the subject's workers running with the example config (every
    timer beyond the test) and a fake Slack each; stopped on leaving."""
    config = write_config(tmp_path / "config.yaml")
    # Slack answers in 20 ms, as a distant API would: deliveries are in flight too
    ref = Pipeline("reference", reference_settings, topics_of(reference_settings),
                   FakeSlack(latency=0.02), tmp_path)  # fmt: skip
    sub = Pipeline("subject", subject_settings, topics_of(subject_settings),
                   FakeSlack(latency=0.02), tmp_path)  # fmt: skip
    with ExitStack() as stack:
        ref_url = stack.enter_context(serve(ref.slack.app()))
        sub_url = stack.enter_context(serve(sub.slack.app()))
        stack.enter_context(running(ref, sub, config=config,
                                    slack_urls=[f"{ref_url}/api/", f"{sub_url}/api/"]))  # fmt: skip
        yield ref, sub


def wait_until(pred: Callable[[], bool], timeout: float, what: str,
               *pipelines: Pipeline) -> None:  # fmt: skip
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for p in pipelines:
            for worker, proc in p.procs.items():
                if proc.poll() is not None:
                    raise AssertionError(f"{p.name} {worker} exited ({proc.returncode}) "
                                         f"waiting for {what}\n{p.tails()}")  # fmt: skip
        try:
            if pred():
                return
        except KafkaException:
            pass  # a read while a broker is coming back
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}\n" +
                         "\n".join(p.tails() for p in pipelines))  # fmt: skip


class Readiness:
    """Samples every worker's /readyz on a thread: (monotonic time, worker, ready)."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.samples: list[tuple[float, str, bool]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            for worker in self.pipeline.ports:
                self.samples.append((time.monotonic(), worker, self.pipeline.ready(worker)))

    def __enter__(self) -> Readiness:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def between(self, worker: str, start: float, end: float) -> list[bool]:
        return [ok for t, w, ok in self.samples if w == worker and start <= t <= end]


def topics_of(settings: KafkaSettings) -> Catalog:
    catalog = Catalog(settings)
    for attempt in range(20):
        try:
            create_topics(make_admin(settings), catalog)
            return catalog
        except KafkaException:
            if attempt == 19:
                raise
            time.sleep(0.5)
    return catalog


def run_outage(reference_settings: KafkaSettings, tmp_path: Path, outage_s: float) -> None:
    """The whole scenario; raises AssertionError naming what differs."""
    broker = own_broker()
    try:
        # inside: a start that times out on a loaded host still leaves a broker behind
        broker.start()
        _scenario(broker, reference_settings, tmp_path, outage_s)
    finally:
        broker.stop()  # a second broker left running would cost every later test


def _scenario(broker: LocalBroker, reference_settings: KafkaSettings, tmp_path: Path,
              outage_s: float) -> None:  # fmt: skip
    subject_settings = KafkaSettings(bootstrap_servers=broker.bootstrap, partitions=3,
                                     topic_prefix=f"o{uuid.uuid4().hex[:10]}.")  # fmt: skip
    parts = input_parts()
    with ExitStack() as stack:
        ref, sub = stack.enter_context(started(reference_settings, subject_settings, tmp_path))
        # the gateway (in process): refuses writes while Kafka is away, accepts them after
        # the probe is dated at the fleet's start, long before the gateway's default age bound
        gateway = make_gateway(sub.settings, ack_timeout=2.0, max_behind=timedelta(days=3650))
        gw = stack.enter_context(
            httpx.Client(base_url=stack.enter_context(serve(gateway.app())), timeout=30)
        )
        wait_until(lambda: gw.post("/v1/metrics", content=PROBE, headers=AUTH).status_code == 202,
                   60, "the gateway to accept a write", sub)  # fmt: skip
        ref_producer = make_producer(ref.settings)
        # buffers through the outage: nothing it was given is dropped, however long
        sub_producer = make_producer(sub.settings, **{"message.timeout.ms": 0})
        for worker in ("processor", "agents", "notifier"):
            wait_until(lambda w=worker: sub.ready(w), 120, f"{worker} ready", ref, sub)  # type: ignore[misc]

        ref.produce(ref_producer, parts[0])
        sub.produce(sub_producer, parts[0])
        assert sub_producer.flush(60) == 0
        # the outage comes with work in flight: the processor has written its first
        # transition and is still reading the first part
        wait_until(lambda: b"alert_transition" in sub.log("processor").read_bytes(), 120,
                   "the first transition", sub)  # fmt: skip
        readiness = stack.enter_context(Readiness(sub))
        stopped_at = time.monotonic()
        broker.stop()
        ref.produce(ref_producer, parts[1])
        sub.produce(sub_producer, parts[1])  # queued in the producer until the broker is back
        deadline = stopped_at + outage_s
        refused: list[tuple[int, str | None]] = []
        gateway_ready: list[int] = []
        while time.monotonic() < deadline:
            for worker, proc in sub.procs.items():
                assert proc.poll() is None, f"{worker} exited during the outage\n{sub.tails()}"
            sub_producer.poll(0.5)
            if len(refused) < 20:
                resp = gw.post("/v1/metrics", content=PROBE, headers=AUTH)
                refused.append((resp.status_code, resp.headers.get("Retry-After")))
                gateway_ready.append(gw.get("/readyz").status_code)
        broker.start()
        back_at = time.monotonic()
        wait_until(lambda: gw.post("/v1/metrics", content=PROBE, headers=AUTH).status_code == 202,
                   60, "the gateway to accept writes again", sub)  # fmt: skip
        ref.produce(ref_producer, parts[2])
        sub.produce(sub_producer, parts[2])
        assert ref_producer.flush(60) == 0
        assert sub_producer.flush(120) == 0, "the buffering producer lost input"

        want_notes, want_calls = same_output(ref, sub, parts)
        # ready again after (a worker that never is fails here)
        for worker in sub.procs:
            wait_until(lambda w=worker: sub.ready(w), 60, f"{worker} ready after", sub)  # type: ignore[misc]
        # the processes started before the outage, none restarted (a Popen is one pid)
        running_after = {w: proc.poll() is None for w, proc in sub.procs.items()}

    # what the outage changed: nothing
    got_notes, got_calls = settled(sub)
    assert got_notes == want_notes, diff(want_notes, got_notes)
    assert got_calls == want_calls, diff(want_calls, got_calls)
    for channel, msgs in ref.slack.messages.items():
        assert len(sub.slack.messages.get(channel, [])) == len(msgs), channel
    # every worker rode it out: same processes, not ready meanwhile, ready again after
    for worker in sub.procs:
        assert running_after[worker], f"{worker} exited"
        during = readiness.between(worker, stopped_at + 1, back_at)
        assert during and not all(during), f"{worker} reported ready through the outage"
    # the gateway never took a write Kafka did not acknowledge, and said when to retry
    assert {code for code, _ in refused} <= {429, 503}, refused
    assert any(code == 429 and after for code, after in refused), refused
    assert 503 in gateway_ready, "the gateway reported ready through the outage"
    for worker in sub.procs:
        assert "kafka_waiting" in sub.log(worker).read_text(), f"{worker} never said it waited"


def settled(p: Pipeline) -> tuple[Counter[str], Counter[tuple[str, str]]]:
    """What a run has paged: notifications by id (a batch whose effects were acknowledged
    and whose state write was not when a fault struck is decided again after it, and
    re-emits them under the same ids (docs/incidents.md), which the notifier drops), and
    what people see, the Slack calls, raw."""
    return Counter(set(p.notifications())), p.slack_calls()


def same_output(ref: Pipeline, sub: Pipeline, parts: list[list[Record]]
                ) -> tuple[Counter[str], Counter[tuple[str, str]]]:  # fmt: skip
    """Waits until both runs have read all their input (`parts`, as produced: an alert
    made again would carry another production time), their alerts equal what the
    uninterrupted engines write, and the subject has paged exactly what the reference
    has; the reference's pages. Raises AssertionError naming what differs."""
    pack = load_rule_files([RULES])
    want_alerts = Counter(reference_transitions(pack, ref.settings, ref.catalog))
    want_alerts += Counter(v for part in parts for t, _, v in part if t == "alerts")
    for p in (ref, sub):
        group = f"{p.settings.topic_prefix}processor"
        wait_until(lambda p=p, g=group: wait_for_lag_zero(p.settings, p.catalog, g, 5), 180,  # type: ignore[misc]
                   f"{p.name} processor caught up", ref, sub)  # fmt: skip
        same = f"{p.name} alerts equal to the uninterrupted engines'"
        try:
            wait_until(lambda p=p: Counter(p.alerts()) == want_alerts, 120,  # type: ignore[misc]
                       same, ref, sub)  # fmt: skip
        except AssertionError as exc:
            raise AssertionError(f"{exc}\nalerts: {_alert_diff(want_alerts, Counter(p.alerts()))}"
                                 ) from None  # fmt: skip
    # the reference has had no reason to stop: wait until its output stops changing
    last: list[object] = [None]

    def ref_quiet() -> bool:
        now = settled(ref)
        same, last[0] = now == last[0], now
        return same and sum(now[0].values()) > 0

    wait_until(ref_quiet, 120, "the reference's output to settle", ref, sub)
    want_notes, want_calls = settled(ref)
    try:
        wait_until(lambda: settled(sub) == (want_notes, want_calls), 180,
                   "the subject's notifications and Slack calls to equal the reference's",
                   ref, sub)  # fmt: skip
    except AssertionError as exc:
        got_notes, got_calls = settled(sub)
        raise AssertionError(
            f"{exc}\nnotifications: {diff(want_notes, got_notes)}"
            f"\nSlack calls: {diff(want_calls, got_calls)}"
        ) from None
    return want_notes, want_calls


def _alert_diff(want: Counter[bytes], got: Counter[bytes]) -> str:
    def brief(c: Counter[bytes]) -> dict[str, int]:
        out: Counter[str] = Counter()
        for raw, n in c.items():
            a = decode(Alert, raw)
            out[f"{a.rule} {a.status} {a.fingerprint} {a.event_id}"] += n
        return dict(out.most_common(20))

    return f"missing {brief(want - got)}; extra {brief(got - want)}"


def diff(want: Counter, got: Counter) -> str:  # type: ignore[type-arg]
    return f"missing {dict(want - got)}; extra {dict(got - want)}"

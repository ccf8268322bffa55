"""SIGKILL a processor again and again while input arrives, then compare every output
topic, record for record, with an uninterrupted run over a copy of the same input.

Kills are timed from the process start, not from a log line: they land in start-up
(before the worker owns partitions), in restore (checkpoint read), in replay, and
mid-batch. Input is produced during the kills, with junk (dead letters) and samples
far in the past (late) among it, so every output topic has something to compare.
"""

from __future__ import annotations

import random
import subprocess
import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import orjson

from benchmarks.faults.harness import (
    Diff,
    Row,
    committed_lag,
    compare,
    copy_topic,
    exited_by_itself,
    kill9,
    read_partitions,
    start,
)
from benchmarks.scratch import scratch
from schemas import MetricSample, encode
from streams.demo.workload import Fleet
from streams.kafka import make_producer
from streams.settings import KafkaSettings

RULES = Path("rules/default.yaml")
INPUTS = ("metrics", "logs")
OUTPUTS = ("alerts", "late", "deadletter")


def _records(minutes: float) -> list[tuple[str, bytes, bytes]]:
    """(input, key, value) in production order: the fleet's ticks, a junk record now and
    then (dead letter) and, later on, a sample dated at the start (late)."""
    from datetime import UTC, datetime

    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    out: list[tuple[str, bytes, bytes]] = []
    for i, tick in enumerate(Fleet(t0).ticks(minutes)):
        for m in tick.metrics:
            out.append(("metrics", m.series_key().encode(), encode(m)))
        for rec in tick.logs:
            out.append(("logs", rec.labels["service"].encode(), encode(rec)))
        if i % 7 == 3:
            out.append(("metrics", f"junk-{i}".encode(), b'{"name": "cpu_percent", "value": '))
            out.append(("logs", f"junk-{i}".encode(), b"\xff\xfe not a log record"))
        if i > 12 and i % 5 == 0:
            late = MetricSample(name="cpu_percent", value=99.0, time=t0 + timedelta(seconds=i),
                                labels={"host": "web-01", "service": "search"})  # fmt: skip
            out.append(("metrics", late.series_key().encode(), encode(late)))
    return out


def _produce(settings: KafkaSettings, records: list[tuple[str, bytes, bytes]], seconds: float,
             done: threading.Event) -> None:  # fmt: skip
    """Spread the records evenly over ``seconds``: input keeps arriving during the kills."""
    producer = make_producer(settings)
    started = time.monotonic()
    for n, (topic, key, value) in enumerate(records):
        while True:
            try:
                producer.produce(settings.topic_prefix + topic, key=key, value=value)
                break
            except BufferError:
                producer.poll(0.05)
        if n % 200 == 0:
            producer.poll(0)
            ahead = started + seconds * n / len(records) - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
    assert producer.flush(60) == 0
    done.set()


def _worker(settings: KafkaSettings, log: Path, instance: str = "w1") -> subprocess.Popen[bytes]:
    args = ["--rules", str(RULES), "--instance-id", instance,
            "--group", f"{settings.topic_prefix}processor", "--health-port", "0",
            "--checkpoint-every", "0.5", "--batch-size", "300"]  # fmt: skip
    return start("processor", args, settings, log)


def _phase(log: Path) -> str:
    text = log.read_text(errors="replace")
    if "partitions_assigned" not in text:
        return "start-up"
    if "partition_restored" not in text and "partition_rebuilt" not in text:
        return "restore"
    return "replay or live"


def _run_to_end(settings: KafkaSettings, log: Path, timeout: float) -> tuple[bool, int]:
    """Start a worker and let it consume everything; (caught up, exits by itself)."""
    worker = _worker(settings, log, "final")
    group = f"{settings.topic_prefix}processor"
    deadline = time.monotonic() + timeout
    exits = 0
    try:
        while time.monotonic() < deadline:
            if exited_by_itself(worker):
                exits += 1
                worker = _worker(settings, log, "final")
            if committed_lag(settings, group, [settings.topic_prefix + t for t in INPUTS]) == 0:
                return True, exits
            time.sleep(0.5)
        return False, exits
    finally:
        kill9(worker)


def _outputs(settings: KafkaSettings) -> dict[str, list[object]]:
    """Each output topic's records, normalised only where an uninterrupted run must
    differ (a dead letter names its prefixed source topic and carries its own id)."""
    out: dict[str, list[object]] = {}
    for topic in OUTPUTS:
        recs = [r for rs in read_partitions(settings, settings.topic_prefix + topic).values()
                for r in rs]  # fmt: skip
        if topic == "deadletter":
            docs = [orjson.loads(v) for _, v in recs]
            out[topic] = [(d.get("source_topic", "").removeprefix(settings.topic_prefix),
                           d.get("partition"), d.get("offset"), d.get("value"), d.get("reason"),
                           d.get("stage")) for d in docs]  # fmt: skip
        elif topic == "late":
            out[topic] = [(k, v) for k, v in recs]
        else:
            out[topic] = [v for _, v in recs]
    return out


def run(bootstrap: str, trials: int, tmp: Path, seed: int | None = None,
        max_delay: float = 8.0) -> Row:  # fmt: skip
    rng = random.Random(seed)
    rerun = f"python -m benchmarks.faults processor --trials {trials}"
    records = _records(minutes=max(20.0, trials * 2.0))
    phases: Counter[str] = Counter()
    exits = 0
    with scratch(bootstrap, "fkp", partitions=3) as faulted, \
         scratch(bootstrap, "fkr", partitions=3) as reference:  # fmt: skip
        done = threading.Event()
        feeding = threading.Thread(
            target=_produce, args=(faulted, records, trials * max_delay * 0.6, done), daemon=True
        )
        feeding.start()
        for trial in range(trials):
            log = tmp / f"processor-{trial}.log"
            worker = _worker(faulted, log)
            if trial % 2 == 0:
                # timed from the process start: mostly start-up and restore on a busy host
                time.sleep(rng.uniform(0.2, max_delay))
            else:
                # timed from the assignment: restore, replay of the input since the last
                # checkpoint, or mid-batch
                deadline = time.monotonic() + 60
                while ("partitions_assigned" not in log.read_text(errors="replace")
                       and time.monotonic() < deadline and worker.poll() is None):  # fmt: skip
                    time.sleep(0.02)
                time.sleep(rng.uniform(0.0, max_delay / 3))
            if exited_by_itself(worker):
                exits += 1
            phases[_phase(log)] += 1
            kill9(worker)
        feeding.join(300)
        assert done.is_set(), "the input producer did not finish"
        caught_up, final_exits = _run_to_end(faulted, tmp / "processor-final.log", 300)
        exits += final_exits
        for topic in INPUTS:
            copy_topic(faulted, reference, topic)
        ref_up, ref_exits = _run_to_end(reference, tmp / "processor-reference.log", 300)
        got, want = _outputs(faulted), _outputs(reference)
    diff = Diff()
    for topic in OUTPUTS:
        diff += compare(topic, got[topic], want[topic])
    notes = [f"kills by phase: {dict(phases)}",
             "outputs: " + ", ".join(f"{t} {len(want[t])}" for t in OUTPUTS)]  # fmt: skip
    if not caught_up or not ref_up:
        notes.append(f"caught up: faulted={caught_up} reference={ref_up}")
    if ref_exits:
        notes.append(f"the uninterrupted run's worker exited by itself {ref_exits} times")
    notes += diff.examples
    ok = diff.clean and caught_up and ref_up and not exits and not ref_exits
    ok = ok and all(want[t] for t in OUTPUTS)  # every output topic had something to compare
    return Row("processor SIGKILL", trials, diff.lost, diff.duplicated, None, exits, ok, rerun,
               notes)  # fmt: skip

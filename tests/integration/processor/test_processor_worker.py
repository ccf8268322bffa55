"""`tocsin run processor` against the real broker: the demo fleet in, transitions out."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import orjson

from harness.workers import health_port, kill9, start_worker, wait_for_lag_zero
from schemas import Alert, DeadLetter, decode
from schemas.rules import load_rule_files
from streams.catalog import Catalog
from streams.kafka import make_producer
from streams.settings import KafkaSettings
from tests.processor_support import produce_fleet, read_all, reference_transitions

RULES = Path("rules/default.yaml")


def _processed(port: int) -> float:
    """The records a worker has processed, from its /metrics."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("tocsin_records_processed_total"))  # fmt: skip


def test_worker_emits_the_transitions_of_the_reference_run(
    kafka_settings: KafkaSettings, topics: Catalog, tmp_path: Path
) -> None:
    produce_fleet(kafka_settings, topics, minutes=20)
    bad = make_producer(kafka_settings)
    poison = [b'{"name":"cpu_percent","value":1e999}', b"\xff\xfe garbage"]
    bad.produce(topics.name("metrics"), key=b"x", value=poison[0])
    bad.produce(topics.name("logs"), key=b"x", value=poison[1])
    assert bad.flush(10) == 0

    log = tmp_path / "worker.log"
    worker = start_worker(kafka_settings, RULES, log)
    try:
        group = f"{kafka_settings.topic_prefix}processor"
        caught_up = wait_for_lag_zero(kafka_settings, topics, group, timeout=120)
        assert caught_up, log.read_text()[-3000:]
    finally:
        kill9(worker)

    got = [v for vs in read_all(kafka_settings, topics.name("alerts")).values() for v in vs]
    want = reference_transitions(load_rule_files([RULES]), kafka_settings, topics)
    assert sorted(got) == sorted(want)
    firing = {
        (a.rule, a.labels.get("host") or a.labels.get("service"))
        for a in (decode(Alert, v) for v in got)
        if a.status == "firing"
    }
    assert ("memory_high", "db-01") in firing
    assert ("http_5xx_error_rate", "checkout") in firing

    letters = [
        decode(DeadLetter, v)
        for vs in read_all(kafka_settings, topics.name("deadletter")).values()
        for v in vs
    ]
    assert sorted(dl.value for dl in letters if dl.value) == sorted(poison)
    assert all(dl.offset is not None and dl.reason for dl in letters)


def test_worker_serves_health_and_metrics(
    kafka_settings: KafkaSettings, topics: Catalog, tmp_path: Path
) -> None:
    log = tmp_path / "worker.log"
    worker = start_worker(kafka_settings, RULES, log)
    try:
        base = f"http://127.0.0.1:{health_port(log)}"
        ready = httpx.get(f"{base}/readyz")
        for _ in range(100):
            if ready.status_code == 200:
                break
            time.sleep(0.2)
            ready = httpx.get(f"{base}/readyz")
        assert ready.status_code == 200, ready.text
        assert orjson.loads(ready.content)["checks"]["group"]["ok"] is True
        assert httpx.get(f"{base}/healthz").status_code == 200
        assert "tocsin_records_processed_total" in httpx.get(f"{base}/metrics").text
    finally:
        kill9(worker)


def test_a_second_worker_takes_over_partitions_without_loss_or_duplicates(
    kafka_settings: KafkaSettings, topics: Catalog, tmp_path: Path
) -> None:
    produce_fleet(kafka_settings, topics, minutes=30)
    log = tmp_path / "workers.log"
    # tiny transactions (a commit per batch, no linger folding batches together) slow
    # the first worker down enough to be caught mid-stream; the second defers the
    # offsets of batches that wrote nothing and lingers before its commits
    first = start_worker(kafka_settings, RULES, log, instance="a", checkpoint_every=0.5,
                         batch_size=100, commit_every_ms=0, commit_linger_ms=0)  # fmt: skip
    second = None
    try:
        # the first worker owns everything and is mid-stream
        port = health_port(log)
        deadline = time.monotonic() + 60
        while _processed(port) == 0:
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.1)
        second = start_worker(kafka_settings, RULES, log, instance="b", checkpoint_every=0.5,
                              batch_size=100)  # fmt: skip
        group = f"{kafka_settings.topic_prefix}processor"
        # the rebalance must finish before the workers are killed: on a loaded machine the
        # first worker can drain the input while the second is still joining (CI saw the
        # revocation logged, the lag at zero and the new assignment not yet made)
        deadline = time.monotonic() + 60
        while log.read_text().count("partitions_assigned") < 3 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert wait_for_lag_zero(kafka_settings, topics, group, timeout=120), log.read_text()[
            -3000:
        ]
    finally:
        kill9(first)
        if second is not None:
            kill9(second)
    text = log.read_text()
    assert text.count("partitions_assigned") >= 3, "the group rebalanced onto both workers"
    got = [v for vs in read_all(kafka_settings, topics.name("alerts")).values() for v in vs]
    want = reference_transitions(load_rule_files([RULES]), kafka_settings, topics)
    assert sorted(got) == sorted(want)

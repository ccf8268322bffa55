"""A faust-streaming worker on the real broker keeps its table across a restart."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

APP = Path(__file__).parent / "apps" / "counter.py"


def _start_worker(prefix: str, bootstrap: str, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "COUNTER_PREFIX": prefix,
        "TOCSIN_BOOTSTRAP_SERVERS": bootstrap,
        "COUNTER_DATADIR": str(log.parent / "faust-data"),
    }
    return subprocess.Popen(
        # info: a restart that never counts shows how far its recovery got
        [sys.executable, str(APP), "worker", "--loglevel", "info"],
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _wait_committed(broker: str, prefix: str, want: int, timeout: float = 60) -> None:
    """Until the counter's group has committed `want` records of its input."""
    reader = Consumer({"bootstrap.servers": broker, "group.id": f"{prefix}counter"})
    parts = [TopicPartition(f"{prefix}words", p) for p in range(3)]
    deadline = time.monotonic() + timeout
    try:
        while True:
            done = sum(max(tp.offset, 0) for tp in reader.committed(parts, timeout=10))
            if done >= want:
                return
            assert time.monotonic() < deadline, f"the counter committed {done} of {want}"
            time.sleep(0.2)
    finally:
        reader.close()


def _read_counts(consumer: Consumer, want: int, timeout: float) -> list[str]:
    got: list[str] = []
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        got += [m.value().decode() for m in consumer.consume(100, timeout=0.5) if not m.error()]
    return got


@pytest.fixture
def prefix() -> str:
    return f"f{uuid.uuid4().hex[:8]}-"


@pytest.fixture
def workers() -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def test_table_counts_survive_a_worker_restart(
    broker: str, prefix: str, workers: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    log = tmp_path / "worker.log"
    producer = Producer({"bootstrap.servers": broker, "acks": "all"})
    consumer = Consumer(
        {
            "bootstrap.servers": broker,
            "group.id": f"{prefix}reader",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([f"{prefix}counts"])

    # the input topic exists before anyone writes: its partitions must match the changelog's
    admin = AdminClient({"bootstrap.servers": broker})
    # and the broker does not auto-create topics, so the output topic is declared too
    futures = admin.create_topics([NewTopic(f"{prefix}{t}", 3, 1) for t in ("words", "counts")])
    for fut in futures.values():
        fut.result()
    workers.append(_start_worker(prefix, broker, log))
    for word in ["alpha", "beta", "alpha", "alpha", "beta"]:
        producer.produce(f"{prefix}words", key=word.encode(), value=word.encode())
    assert producer.flush(30) == 0
    first = _read_counts(consumer, 5, timeout=90)
    assert sorted(first)[-1] == "beta=2" and "alpha=3" in first, log.read_text()[-3000:]

    _wait_committed(broker, prefix, 5)  # what a restart must not count again
    workers[0].send_signal(signal.SIGTERM)
    workers[0].wait(timeout=60)
    workers.append(_start_worker(prefix, broker, log))
    producer.produce(f"{prefix}words", key=b"alpha", value=b"alpha")
    assert producer.flush(30) == 0
    after = _read_counts(consumer, 1, timeout=120)
    consumer.close()
    # the restarted worker counts on from the changelog (3), never from scratch; under
    # at-least-once a record whose offset was not yet committed may be counted again
    assert after, log.read_text()[-3000:]
    assert after[0] == "alpha=4", f"table lost its counts: {after}\n{log.read_text()[-3000:]}"

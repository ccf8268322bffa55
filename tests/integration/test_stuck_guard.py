"""The stuck-client guard against the real broker: what it asks a new client, and a worker
whose producer is never acknowledged while the cluster serves being exited."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import pytest
from confluent_kafka.admin import NewTopic  # type: ignore[attr-defined]
from structlog.testing import capture_logs

from streams.catalog import Catalog
from streams.ingest.worker import IngestWorker
from streams.kafka import make_admin, make_producer
from streams.runtime.stuck import EXIT_STUCK, SERVED, StuckGuard, cluster_serves
from streams.settings import KafkaSettings


def test_a_new_client_is_served_every_catalog_partition(
    kafka_settings: KafkaSettings, topics: Catalog
) -> None:
    names = [t.name for t in topics]
    assert cluster_serves(kafka_settings, names) == (True, SERVED)
    missing = f"{kafka_settings.topic_prefix}never-created"
    assert cluster_serves(kafka_settings, [*names, missing]) == (
        False, f"topic {missing} not served")  # fmt: skip
    with socket.socket() as s:  # a port nothing listens on: the broker away
        s.bind(("127.0.0.1", 0))
        away = KafkaSettings(bootstrap_servers=f"127.0.0.1:{s.getsockname()[1]}")
    served, why = cluster_serves(away, names, timeout=2)
    assert not served and why.startswith("no metadata")


class NeverAcknowledged:
    """A producer whose records are never acknowledged, as a stuck client's are not, while
    the broker serves everyone else."""

    def __init__(self, *_: Any, **__: Any) -> None:
        self.held = 0

    def produce(self, *_: Any, **__: Any) -> None:
        self.held += 1

    def poll(self, timeout: float = 0) -> int:
        return 0

    def flush(self, timeout: float = -1) -> int:
        time.sleep(min(timeout, 0.2))  # a flush waits out its timeout in vain
        return self.held


def test_a_worker_that_cannot_progress_while_the_cluster_serves_is_exited(
    kafka_settings: KafkaSettings, topics: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = f"{kafka_settings.topic_prefix}telegraf"
    admin = make_admin(kafka_settings)
    for f in admin.create_topics([NewTopic(source, 1, 1)]).values():
        f.result(30)
    producer = make_producer(kafka_settings)
    producer.produce(source, b"cpu,host=a usage=1.5 1767225600000000000")
    assert producer.flush(10) == 0
    monkeypatch.setattr("streams.ingest.worker.make_producer", NeverAcknowledged)
    worker = IngestWorker(kafka_settings, "influx", source)
    exited: list[int] = []
    gone = threading.Event()

    def exit(code: int) -> None:
        exited.append(code)
        gone.set()

    # this worker's waits only: the test process holds other tests' workers too, and a
    # worker process holds one worker
    guard = StuckGuard(kafka_settings, [*(t.name for t in topics), source], after_s=1,
                       watched=lambda: [worker.loop.wait], exit=exit)  # fmt: skip
    stop = threading.Event()

    def run() -> None:
        with pytest.raises(RuntimeError, match="stopped before outputs were acknowledged"):
            worker.run(stop)  # stopped while waiting: nothing is committed

    thread = threading.Thread(target=run, daemon=True)
    with capture_logs() as logs:
        thread.start()
        guard.start()
        try:
            assert gone.wait(60), "the guard never gave up on the worker"
        finally:
            guard.stop()
            stop.set()
            thread.join(30)
    assert exited[0] == EXIT_STUCK
    stuck = next(e for e in logs if e["event"] == "kafka_clients_stuck")
    assert stuck["worker"] == "ingest-influx"
    assert "acknowledgement" in stuck["waiting_for"] and stuck["served_for_s"] >= 1
    assert stuck["cluster"] == SERVED

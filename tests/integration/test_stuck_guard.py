"""The stuck-client guard against the real broker: what it asks a new client, and a worker
whose producer is never acknowledged while the cluster serves being exited."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, MutableMapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from confluent_kafka.admin import NewTopic  # type: ignore[attr-defined]
from structlog.testing import capture_logs

from schemas import Alert, encode
from streams.catalog import Catalog
from streams.expiry.worker import ExpiryWorker
from streams.ingest.worker import IngestWorker
from streams.kafka import KafkaWait, make_admin, make_producer
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

    def run(stop: threading.Event) -> None:
        with pytest.raises(RuntimeError, match="stopped before outputs were acknowledged"):
            worker.run(stop)  # stopped while waiting: nothing is committed

    stuck = _exited(kafka_settings, [*(t.name for t in topics), source], worker.loop.wait, run)
    assert stuck["worker"] == "ingest-influx"
    assert "acknowledgement" in stuck["waiting_for"]


def test_an_expiry_worker_whose_resolutions_are_never_acknowledged_is_exited(
    kafka_settings: KafkaSettings, topics: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = datetime.now(UTC)
    firing = Alert(fingerprint="stopped", status="firing", rule="stopped",
                   source="alertmanager", labels={"alertname": "stopped"},
                   starts_at=now - timedelta(minutes=1), ends_at=now)  # fmt: skip
    producer = make_producer(kafka_settings)
    producer.produce(topics.name("alerts"), key=b"stopped", value=encode(firing))
    assert producer.flush(10) == 0
    monkeypatch.setattr("streams.expiry.worker.make_producer", NeverAcknowledged)
    monkeypatch.setattr("streams.expiry.worker.ACK_WAIT_S", 1.0)
    worker = ExpiryWorker(kafka_settings)
    stuck = _exited(kafka_settings, [t.name for t in topics], worker.producer_wait, worker.run)
    assert stuck["worker"] == "expiry/producer"
    assert "acknowledgement of resolved alerts" in stuck["waiting_for"]


def _exited(settings: KafkaSettings, names: list[str], wait: KafkaWait,
            run: Callable[[threading.Event], None]) -> MutableMapping[str, Any]:  # fmt: skip
    """Runs `run` under a guard watching `wait` until the guard exits it; its log line.
    This worker's wait only: the test process holds other tests' workers too, and a
    worker process holds one worker."""
    exited: list[int] = []
    gone = threading.Event()

    def exit(code: int) -> None:
        exited.append(code)
        gone.set()

    guard = StuckGuard(settings, names, after_s=1, watched=lambda: [wait], exit=exit)
    stop = threading.Event()
    thread = threading.Thread(target=run, args=(stop,), daemon=True)
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
    assert stuck["served_for_s"] >= 1 and stuck["cluster"] == SERVED
    return stuck

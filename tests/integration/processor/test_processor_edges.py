"""The worker's edges on the real broker: late samples to `late`, future timestamps to
`deadletter`, readiness, and a graceful SIGTERM that commits and leaves the group."""

from __future__ import annotations

import os
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson

from harness.workers import health_port, kill9, start_worker, wait_for_lag_zero
from schemas import DeadLetter, decode
from streams.catalog import Catalog
from streams.kafka import make_producer
from streams.settings import KafkaSettings
from tests.processor_support import read_all

RULES = Path("rules/default.yaml")


def _metric(at: datetime, value: float = 50.0) -> bytes:
    return orjson.dumps({"name": "cpu_percent", "value": value, "time": at.isoformat(),
                         "labels": {"host": "h1", "service": "s"}})  # fmt: skip


def test_late_future_ready_and_sigterm(
    kafka_settings: KafkaSettings, topics: Catalog, tmp_path: Path
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    p = make_producer(kafka_settings)
    metrics = topics.name("metrics")
    for i in range(30):  # one series, so all in one partition, in order
        p.produce(
            metrics,
            key=b"h1",
            value=_metric(now - timedelta(minutes=10) + i * timedelta(seconds=10)),
        )
    late = _metric(now - timedelta(minutes=20))  # far beyond the 30 s grace
    future = _metric(now + timedelta(hours=1))  # beyond the 5 minute skew
    p.produce(metrics, key=b"h1", value=late)
    p.produce(metrics, key=b"h1", value=future)
    assert p.flush(10) == 0

    log = tmp_path / "worker.log"
    worker = start_worker(kafka_settings, RULES, log)
    try:
        base = f"http://127.0.0.1:{health_port(log)}"
        group = f"{kafka_settings.topic_prefix}processor"
        assert wait_for_lag_zero(kafka_settings, topics, group, timeout=60), log.read_text()[-3000:]
        ready = orjson.loads(httpx.get(f"{base}/readyz").content)
        assert ready["checks"]["kafka"]["ok"] is True
        assert ready["checks"]["group"]["ok"] is True
        text = httpx.get(f"{base}/metrics").text
        assert f'tocsin_late_records_total{{topic="{metrics}"}} 1.0' in text
        assert "future_timestamp" in text

        # more input, then SIGTERM: the batch in hand is committed and the group left
        for i in range(30, 60):
            p.produce(
                metrics,
                key=b"h1",
                value=_metric(now - timedelta(minutes=10) + i * timedelta(seconds=10)),
            )
        assert p.flush(10) == 0
        os.kill(worker.pid, signal.SIGTERM)
        assert worker.wait(30) == 0, log.read_text()[-3000:]
    finally:
        kill9(worker)
    text = log.read_text()
    # it gave its partitions back on the way out (close() leaves the group at once)
    assert text.index("partitions_revoked") < text.index("processor_stopped")

    assert [v for vs in read_all(kafka_settings, topics.name("late")).values() for v in vs] == [
        late
    ]
    letters = [
        decode(DeadLetter, v)
        for vs in read_all(kafka_settings, topics.name("deadletter")).values()
        for v in vs
    ]
    assert [(dl.reason, dl.value) for dl in letters] == [("future_timestamp", future)]

"""A restarted processor keeps its detectors: scores continue without a new warm-up."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from harness.workers import health_port, kill9, start_worker, wait_for_lag_zero
from schemas import Alert, MetricSample, decode, encode
from streams.catalog import Catalog
from streams.kafka import make_producer
from streams.settings import KafkaSettings
from tests.processor_support import read_all

RULES = """
rules:
  - name: rate_anomaly
    signal: {kind: metric, metric: http_requests_per_second}
    anomaly: {threshold: 0.3, season: none, warm_up: 150, debounce_k: 1, debounce_n: 3}
    group_by: [service]
    summary: "{service}: {value:.0f}/s, expected {expected:.0f}/s"
"""
T0 = datetime(2026, 2, 1, tzinfo=UTC)


def _send(settings: KafkaSettings, catalog: Catalog, values: list[float], start: int) -> None:
    p = make_producer(settings)
    for i, v in enumerate(values, start=start):
        s = MetricSample(name="http_requests_per_second", value=v,
                         time=T0 + timedelta(minutes=i), labels={"service": "auth"})  # fmt: skip
        p.produce(catalog.name("metrics"), key=b"auth", value=encode(s))
    assert p.flush(30) == 0


def test_detector_state_survives_a_restart(
    kafka_settings: KafkaSettings, topics: Catalog, tmp_path: Path
) -> None:
    rules = tmp_path / "anomaly.yaml"
    rules.write_text(RULES)
    rng = random.Random(5)
    group = f"{kafka_settings.topic_prefix}processor"
    log = tmp_path / "worker.log"

    _send(kafka_settings, topics, [200 + rng.gauss(0, 4) for _ in range(200)], start=0)
    worker = start_worker(kafka_settings, rules, log, checkpoint_every=0.2)
    assert wait_for_lag_zero(kafka_settings, topics, group, timeout=60), log.read_text()[-2000:]
    kill9(worker)  # no graceful anything: the checkpoint in Kafka is all that is left

    # 20 normal points, then the rate collapses: 20 points after the restart, far
    # inside a new detector's 150-point warm-up
    _send(kafka_settings, topics, [200 + rng.gauss(0, 4) for _ in range(20)] + [40.0] * 5,
          start=200)  # fmt: skip
    worker = start_worker(kafka_settings, rules, log, checkpoint_every=0.2)
    try:
        assert wait_for_lag_zero(kafka_settings, topics, group, timeout=60), log.read_text()[-2000:]
        # detector memory is reported: one series, its bytes
        metrics = httpx.get(f"http://127.0.0.1:{health_port(log)}/metrics").text
        assert "tocsin_anomaly_series 1.0" in metrics
        (held,) = [float(line.split()[1]) for line in metrics.splitlines()
                   if line.startswith("tocsin_anomaly_state_bytes ")]  # fmt: skip
        assert 0 < held < 64 * 1024
    finally:
        kill9(worker)

    committed = read_all(kafka_settings, topics.name("alerts"))
    alerts = [decode(Alert, v) for vs in committed.values() for v in vs]
    firing = [a for a in alerts if a.status == "firing"]
    assert len(firing) == 1, [a.summary for a in alerts]
    alert = firing[0]
    assert alert.source == "anomaly"
    assert alert.starts_at == T0 + timedelta(minutes=220)
    assert alert.anomaly is not None and alert.anomaly.score >= 0.3
    assert alert.anomaly.expected is not None and abs(alert.anomaly.expected - 200) < 20
    assert alert.value == 40.0
    assert "partition_restored" in log.read_text()

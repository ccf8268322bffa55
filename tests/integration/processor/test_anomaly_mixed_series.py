"""An anomaly rule whose groups interleave several series is blind: the worker says so."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from harness.workers import health_port, kill9, start_worker, wait_for_lag_zero
from schemas import MetricSample, encode
from streams.catalog import Catalog
from streams.kafka import make_producer
from streams.settings import KafkaSettings

RULES = """
rules:
  - name: service_rate_anomaly
    signal: {kind: metric, metric: http_requests_per_second}
    anomaly: {}
    group_by: [service]
  - name: instance_rate_anomaly
    signal: {kind: metric, metric: http_requests_per_second}
    anomaly: {}
    group_by: [service, instance]
"""
T0 = datetime(2026, 2, 1, tzinfo=UTC)


def test_a_rule_that_feeds_one_detector_several_series_is_reported(
    kafka_settings: KafkaSettings, topics: Catalog, tmp_path: Path
) -> None:
    rules = tmp_path / "anomaly.yaml"
    rules.write_text(RULES)
    p = make_producer(kafka_settings)
    for i in range(20):
        for instance, level in (("a", 100.0), ("b", 1000.0)):
            s = MetricSample(name="http_requests_per_second", value=level,
                             time=T0 + timedelta(minutes=i),
                             labels={"service": "auth", "instance": instance})  # fmt: skip
            p.produce(topics.name("metrics"), key=f"auth/{instance}".encode(), value=encode(s))
    assert p.flush(30) == 0
    group = f"{kafka_settings.topic_prefix}processor"
    log = tmp_path / "worker.log"
    worker = start_worker(kafka_settings, rules, log, checkpoint_every=0.2)
    try:
        assert wait_for_lag_zero(kafka_settings, topics, group, timeout=60), log.read_text()[-2000:]
        port = health_port(log)
        deadline = datetime.now(UTC) + timedelta(seconds=30)
        while True:  # reported with the next checkpoint after the samples
            metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
            if 'tocsin_anomaly_mixed_groups{rule="service_rate_anomaly"} 1.0' in metrics:
                break
            assert datetime.now(UTC) < deadline, metrics[-3000:]
            time.sleep(0.1)
        assert 'rule="instance_rate_anomaly"' not in metrics
        text = log.read_text()
        assert "anomaly_groups_mix_series" in text and "service_rate_anomaly" in text
    finally:
        kill9(worker)

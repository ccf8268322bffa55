"""An anomaly rule whose groups hold several series pages for an anomaly of one of them,
through the real processor: each series has its own detector behind the group's alert."""

from __future__ import annotations

import random
import time
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
  - name: service_rate_anomaly
    signal: {kind: metric, metric: http_requests_per_second}
    anomaly: {}
    group_by: [service]
"""
T0 = datetime(2026, 2, 2, tzinfo=UTC)  # a Monday
STEP = timedelta(minutes=5)
DAYS = 11
OUTAGE = (10 * 288, 10 * 288 + 36)  # instance a serves nothing for three hours on day 10


def test_one_series_of_a_group_going_quiet_pages_for_the_group(
    kafka_settings: KafkaSettings, topics: Catalog, tmp_path: Path
) -> None:
    rules = tmp_path / "anomaly.yaml"
    rules.write_text(RULES)
    p = make_producer(kafka_settings)
    rng = random.Random(4)
    for i in range(DAYS * 288):
        for instance, level in (("a", 100.0), ("b", 1000.0)):
            value = level * rng.uniform(0.95, 1.05)
            if instance == "a" and OUTAGE[0] <= i < OUTAGE[1]:
                value = 0.0
            s = MetricSample(name="http_requests_per_second", value=value, time=T0 + i * STEP,
                             labels={"service": "auth", "instance": instance})  # fmt: skip
            p.produce(topics.name("metrics"), key=f"auth/{instance}".encode(), value=encode(s))
        p.poll(0)
    assert p.flush(30) == 0
    group = f"{kafka_settings.topic_prefix}processor"
    log = tmp_path / "worker.log"
    worker = start_worker(kafka_settings, rules, log, checkpoint_every=0.2)
    try:
        caught_up = wait_for_lag_zero(kafka_settings, topics, group, timeout=120)
        assert caught_up, log.read_text()[-2000:]
        written = read_all(kafka_settings, topics.name("alerts"))
        alerts = [decode(Alert, v) for vs in written.values() for v in vs]
        firing = [a for a in alerts if a.status == "firing"]
        assert len(firing) == 1, [(a.status, a.starts_at) for a in alerts]
        page = firing[0]
        start = T0 + OUTAGE[0] * STEP
        assert start <= page.starts_at <= start + 3 * STEP
        assert page.labels["service"] == "auth" and "instance" not in page.labels
        assert page.anomaly is not None and page.anomaly.series is not None
        assert "instance=a" in page.anomaly.series
        port = health_port(log)
        deadline = time.monotonic() + 30
        while True:  # reported with the next checkpoint: a detector for each instance
            metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
            if "tocsin_anomaly_series 2.0" in metrics:
                break
            assert time.monotonic() < deadline, metrics[-3000:]
            time.sleep(0.1)
    finally:
        kill9(worker)

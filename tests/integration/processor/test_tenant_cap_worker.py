"""A tenant at its cap of series, through the real worker and broker: its new series'
samples go to `deadletter` (reason tenant_series_cap) and are counted by tenant, while
another tenant's new series is evaluated and fires."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson

from harness.workers import health_port, kill9, start_worker, wait_for_lag_zero
from schemas import Alert, DeadLetter, decode
from streams.catalog import Catalog
from streams.kafka import make_producer
from streams.settings import KafkaSettings
from tests.processor_support import read_all

RULES = """\
settings: {allowed_lateness: 0s, max_series_per_tenant: 2}
rules:
  - name: cpu_max
    signal: {kind: metric, metric: cpu}
    aggregation: max
    window: {size: 10s}
    condition: {op: ">", threshold: 90}
    group_by: [host]
"""


def test_a_tenant_at_its_cap_does_not_stop_another_tenants_new_series(
    kafka_settings: KafkaSettings, topics: Catalog, tmp_path: Path
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    p = make_producer(kafka_settings)
    metrics = topics.name("metrics")
    refused: list[bytes] = []
    for i in range(12):
        at = (start + i * timedelta(seconds=10)).isoformat()
        # noisy has n1 and n2, its cap, before n3 appears; quiet's q2 is its second series
        for tenant, host, value in (("noisy", "n1", 10.0), ("noisy", "n2", 10.0),
                                    ("noisy", "n3", 99.0), ("quiet", "q1", 10.0),
                                    ("quiet", "q2", 99.0)):  # fmt: skip
            doc = orjson.dumps({"name": "cpu", "value": value, "time": at,
                                "labels": {"host": host}, "tenant": tenant})  # fmt: skip
            # one key: one partition, one engine, in this order
            p.produce(metrics, key=b"fleet", value=doc)
            if host == "n3":
                refused.append(doc)
    assert p.flush(10) == 0

    log = tmp_path / "worker.log"
    worker = start_worker(kafka_settings, rules, log)
    try:
        port = health_port(log)
        group = f"{kafka_settings.topic_prefix}processor"
        assert wait_for_lag_zero(kafka_settings, topics, group, timeout=60), log.read_text()[-3000:]
        text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    finally:
        kill9(worker)
    assert 'tocsin_tenant_series_refused_total{tenant="noisy"} 12.0' in text
    assert 'tenant="quiet"' not in text.split("tocsin_tenant_series_refused_total", 1)[1]
    alerts = [decode(Alert, v) for vs in read_all(kafka_settings, topics.name("alerts")).values()
              for v in vs]  # fmt: skip
    assert {(a.status, a.labels["host"]) for a in alerts} == {("firing", "q2")}
    letters = [decode(DeadLetter, v)
               for vs in read_all(kafka_settings, topics.name("deadletter")).values()
               for v in vs]  # fmt: skip
    assert [(dl.reason, dl.value) for dl in letters] == [("tenant_series_cap", d) for d in refused]
    assert "tenant 'noisy'" in letters[0].error

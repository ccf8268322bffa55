"""`tocsin run processor --config DIR` on the real broker: three tenants' identical series
on one Kafka key, the shared rules for all of them and a tenant's own rule for its
samples only; every alert and dead letter carries its tenant."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from harness.workers import kill9, start_worker, wait_for_lag_zero
from schemas import Alert, DeadLetter, decode
from schemas.config import load_installation
from schemas.config.installation import rule_pack
from schemas.rules import load_rule_files
from schemas.telemetry import series_key
from streams.catalog import Catalog
from streams.kafka import make_producer
from streams.settings import KafkaSettings
from tests.processor_support import read_all, reference_transitions

SHARED = """\
rules:
  - name: mem_high
    signal: {kind: metric, metric: memory_percent}
    window: {size: 30s}
    condition: {op: ">", threshold: 90}
    group_by: [host]
"""
ACME_OWN = """\
rules:
  - name: acme_mem_tight
    signal: {kind: metric, metric: memory_percent}
    window: {size: 30s}
    condition: {op: ">", threshold: 60}
    group_by: [host]
"""
LABELS = {"host": "db-1"}


def _installation(tmp_path: Path) -> tuple[Path, Path]:
    rules = tmp_path / "rules.yaml"
    rules.write_text(SHARED)
    config = tmp_path / "config"
    shutil.copytree("examples/config", config)
    (config / "tenants" / "acme" / "rules" / "mem.yaml").write_text(ACME_OWN)
    (config / "tenants" / "beta").mkdir()
    (config / "tenants" / "beta" / "tocsin.yaml").write_text("users: []\n")
    return rules, config


def _sample(tenant: str, value: float, at: datetime, **extra: object) -> bytes:
    # as the gateway writes them: the tenant from the credential, the series as key
    return orjson.dumps({"name": "memory_percent", "value": value, "time": at.isoformat(),
                         "labels": LABELS, "tenant": tenant, **extra})  # fmt: skip


def test_tenants_identical_series_are_evaluated_apart_with_their_own_rules(
    kafka_settings: KafkaSettings, topics: Catalog, tmp_path: Path
) -> None:
    rules, config = _installation(tmp_path)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    key = series_key("memory_percent", LABELS).encode()  # one key, so one partition
    p = make_producer(kafka_settings)
    metrics = topics.name("metrics")
    # the provider's host and beta's are full; acme's is at 70%, above its own threshold
    # of 60 only: averaged together they would be one series at 86.7%, below 90
    for i in range(24):
        at = start + i * timedelta(seconds=10)
        for tenant, value in (("default", 95.0), ("acme", 70.0), ("beta", 95.0)):
            p.produce(metrics, key=key, value=_sample(tenant, value, at))
    poison = _sample("acme", 1.0, start, kind="histogram")
    ahead = _sample("beta", 1.0, datetime.now(UTC) + timedelta(hours=1))
    p.produce(metrics, key=key, value=poison)
    p.produce(metrics, key=key, value=ahead)
    assert p.flush(10) == 0

    log = tmp_path / "worker.log"
    worker = start_worker(kafka_settings, rules, log, config=config)
    try:
        group = f"{kafka_settings.topic_prefix}processor"
        assert wait_for_lag_zero(kafka_settings, topics, group, timeout=120), log.read_text()[
            -3000:
        ]
    finally:
        kill9(worker)

    got = [v for vs in read_all(kafka_settings, topics.name("alerts")).values() for v in vs]
    alerts = [decode(Alert, v) for v in got]
    firing = {(a.tenant, a.rule): a for a in alerts if a.status == "firing"}
    assert sorted(firing) == [("acme", "acme_mem_tight"), ("beta", "mem_high"),
                              ("default", "mem_high")]  # fmt: skip
    assert firing["acme", "acme_mem_tight"].value == 70.0
    assert firing["default", "mem_high"].fingerprint != firing["beta", "mem_high"].fingerprint
    # exactly what an engine per partition computes from the same pack
    pack = rule_pack(load_rule_files([rules]), load_installation([config]))
    assert sorted(got) == sorted(reference_transitions(pack, kafka_settings, topics))

    letters = [decode(DeadLetter, v)
               for vs in read_all(kafka_settings, topics.name("deadletter")).values()
               for v in vs]  # fmt: skip
    assert sorted((dl.tenant, dl.reason, dl.value) for dl in letters) == [
        ("acme", "validation", poison), ("beta", "future_timestamp", ahead)]  # fmt: skip

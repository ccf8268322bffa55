"""A real Prometheus (Debian's, `make peers`) scrapes the gateway's own /metrics and
remote-writes the samples back to it: snappy + protobuf decoded into `metrics`."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from harness.workers import kill9
from schemas import MetricSample, decode
from streams.catalog import Catalog
from streams.settings import KafkaSettings
from tests.integration.connectors.support import TOKEN, make_gateway, read_values, serve

BINARY = shutil.which("prometheus")
pytestmark = pytest.mark.skipif(BINARY is None, reason="Prometheus not installed: make peers")


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_real_prometheus_remote_write(
    kafka_settings: KafkaSettings, topics: Catalog, tmp_path: Path
) -> None:
    assert BINARY is not None
    with serve(make_gateway(kafka_settings).app()) as gateway:
        target = gateway.removeprefix("http://")
        config = tmp_path / "prometheus.yml"
        config.write_text(f"""
global: {{scrape_interval: 1s, evaluation_interval: 1s}}
scrape_configs:
  - job_name: tocsin-gateway
    static_configs: [{{targets: ["{target}"]}}]
remote_write:
  - url: {gateway}/api/v1/write
    authorization: {{credentials: {TOKEN}}}
    queue_config: {{batch_send_deadline: 1s, max_shards: 1}}
""")
        prom = subprocess.Popen(
            [
                BINARY,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{_port()}",
            ],
            stdout=(tmp_path / "prometheus.log").open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            samples: list[MetricSample] = []
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                time.sleep(1)
                samples = [
                    decode(MetricSample, v)
                    for v in read_values(kafka_settings, topics.name("metrics"))
                ]
                if any(s.name == "up" for s in samples):
                    break
        finally:
            kill9(prom)
    assert samples, (tmp_path / "prometheus.log").read_text()[-2000:]
    up = [s for s in samples if s.name == "up"]
    assert up and up[0].value == 1.0
    assert up[0].labels == {"job": "tocsin-gateway", "instance": target}
    # Prometheus' own per-scrape series travel the same way (the gateway's labelled
    # counters only appear once a request was counted, so they may miss the first batch)
    assert any(s.name == "scrape_duration_seconds" for s in samples)

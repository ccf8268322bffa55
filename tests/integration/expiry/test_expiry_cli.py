"""`tocsin run expiry` as deployed: ready once it has read its partitions, healthy, and
gone on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from harness.workers import health_port, kill9
from streams.catalog import Catalog
from streams.settings import KafkaSettings


def test_the_worker_gets_ready_and_stops_on_sigterm(
    kafka_settings: KafkaSettings, topics: Catalog, tmp_path: Path
) -> None:
    log = tmp_path / "expiry.log"
    env = {**os.environ, "TOCSIN_BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers,
           "TOCSIN_TOPIC_PREFIX": kafka_settings.topic_prefix,
           "TOCSIN_LOG_FORMAT": "json"}  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-m", "streams.cli.main", "run", "expiry",
                             "--health-port", "0", "--health-host", "127.0.0.1"],
                            env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT,
                            start_new_session=True)  # fmt: skip
    try:
        url = f"http://127.0.0.1:{health_port(log, timeout=60)}"
        deadline, ready = time.monotonic() + 90, None
        while time.monotonic() < deadline:
            ready = httpx.get(f"{url}/readyz", timeout=5)
            if ready.status_code == 200:
                break
            time.sleep(0.5)
        assert ready is not None and ready.status_code == 200, log.read_text()[-2000:]
        assert ready.json()["checks"]["expiry"]["detail"] == "0 leases"
        assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200
        assert "tocsin_expiry_leases 0.0" in httpx.get(f"{url}/metrics", timeout=5).text
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, log.read_text()[-2000:]
    finally:
        kill9(proc)

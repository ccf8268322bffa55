"""A real Alertmanager (Debian's prometheus-alertmanager, `make peers`) posts its webhook
to the gateway: the alert lands on `alerts` keyed by Alertmanager's own fingerprint."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from connectors.sources.alertmanager import fingerprint
from harness.workers import kill9
from schemas import Alert, decode
from streams.catalog import Catalog
from streams.settings import KafkaSettings
from tests.integration.connectors.support import TOKEN, make_gateway, read_keyed, serve

BINARY = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
pytestmark = pytest.mark.skipif(BINARY is None, reason="Alertmanager not installed: make peers")


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_real_alertmanager_webhook(
    kafka_settings: KafkaSettings, topics: Catalog, tmp_path: Path
) -> None:
    assert BINARY is not None
    with serve(make_gateway(kafka_settings).app()) as gateway:
        config = tmp_path / "alertmanager.yml"
        config.write_text(f"""
route:
  receiver: tocsin
  group_by: [alertname]
  group_wait: 1s
  group_interval: 1s
receivers:
  - name: tocsin
    webhook_configs:
      - url: {gateway}/v1/alertmanager
        send_resolved: true
        http_config:
          authorization: {{type: Bearer, credentials: {TOKEN}}}
""")
        port = _port()
        am = subprocess.Popen(
            [
                BINARY,
                f"--config.file={config}",
                f"--storage.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--cluster.listen-address=",
            ],
            stdout=(tmp_path / "am.log").open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            api = f"http://127.0.0.1:{port}/api/v2"
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/-/ready", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.2)
            now = datetime.now(UTC)
            labels = {"alertname": "DiskFull", "instance": "db-1:9100", "severity": "critical"}
            alert = {
                "labels": labels,
                "annotations": {"summary": "disk / is 97% full"},
                "startsAt": now.isoformat(),
                "endsAt": (now + timedelta(minutes=5)).isoformat(),
            }
            assert httpx.post(f"{api}/alerts", json=[alert], timeout=5).status_code == 200
            stored: list[tuple[bytes, bytes]] = []
            while time.monotonic() < deadline and not stored:
                time.sleep(0.5)
                stored = read_keyed(kafka_settings, topics.name("alerts"))
            am_view = httpx.get(f"{api}/alerts", timeout=5).json()
        finally:
            kill9(am)
    assert stored, (tmp_path / "am.log").read_text()[-2000:]
    key, value = stored[0]
    got = decode(Alert, value)
    assert key.decode() == am_view[0]["fingerprint"] == got.fingerprint
    assert fingerprint(labels) == got.fingerprint, "same FNV-1a hash as Alertmanager's"
    assert got.severity == "critical" and got.summary == "disk / is 97% full"
    assert got.status == "firing" and got.source == "alertmanager"

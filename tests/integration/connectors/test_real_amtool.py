"""amtool (Debian's prometheus-alertmanager, `make peers`) against the gateway: it adds a
silence that the agents then apply (the silenced alert pages nobody while another one
pages), queries it and the alerts, and expires it."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from harness.workers import kill9, start_agents
from schemas import Notification, decode
from streams.catalog import Catalog
from streams.settings import KafkaSettings
from tests.integration.connectors.support import AUTH, TOKEN, make_gateway, read_keyed, serve

AMTOOL = shutil.which("amtool")
pytestmark = pytest.mark.skipif(AMTOOL is None, reason="amtool not installed: make peers")
CONFIG = Path("examples/config/tocsin.yaml")


def _wait(what: str, found: Callable[[], object], log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}\n{log.read_text()[-3000:]}")


def _prometheus_alert(name: str, service: str) -> dict[str, object]:
    now = datetime.now(UTC)
    return {"labels": {"alertname": name, "severity": "critical", "service": service},
            "annotations": {"summary": f"{name} on {service}"},
            "startsAt": now.isoformat(),
            "endsAt": (now + timedelta(minutes=5)).isoformat()}  # fmt: skip


def test_amtool_adds_queries_and_expires_a_silence_that_stops_a_page(
    kafka_settings: KafkaSettings, topics: Catalog, tmp_path: Path
) -> None:
    assert AMTOOL is not None
    log = tmp_path / "agents.log"
    agents = start_agents(kafka_settings, CONFIG, log)
    try:
        with serve(make_gateway(kafka_settings).app()) as gateway:
            url = gateway.replace("http://", f"http://amtool:{TOKEN}@")

            def amtool(*args: str) -> str:
                done = subprocess.run([AMTOOL, f"--alertmanager.url={url}", *args],
                                      capture_output=True, text=True, timeout=60)  # fmt: skip
                assert done.returncode == 0, f"amtool {args}: {done.stdout}{done.stderr}"
                return done.stdout

            sid = amtool(
                "silence",
                "add",
                "alertname=NoisyDisk",
                "service=~search|db",
                "--comment=replacing the disk",
                "--author=alice",
                "--duration=1h",
            ).strip()
            assert sid and sid in amtool("silence", "query", "-q")
            table = amtool("silence", "query", "alertname=NoisyDisk")
            assert sid in table and "alice" in table and "replacing the disk" in table
            # the agents apply it once they broadcast it on `suppressions`
            key = f"sil:{sid}".encode()
            _wait(
                "the agents to apply the silence",
                lambda: any(
                    k == key for k, _ in read_keyed(kafka_settings, topics.name("suppressions"))
                ),
                log,
            )
            body = [_prometheus_alert("NoisyDisk", "search"), _prometheus_alert("DbDown", "db")]
            assert (
                httpx.post(f"{gateway}/api/v2/alerts", json=body, headers=AUTH).status_code == 200
            )

            def pages() -> list[Notification]:
                return [n for n in (decode(Notification, v) for _, v in
                                    read_keyed(kafka_settings, topics.name("notifications")))
                        if n.kind == "trigger"]  # fmt: skip

            _wait("the unsilenced alert's page", pages, log)
            _wait("its alert to be listed", lambda: "DbDown" in amtool("alert", "query"), log)
            paged = {p.labels.get("alertname") for p in pages()}
            assert paged == {"DbDown"}, f"the silenced alert paged: {paged}"
            amtool("silence", "expire", sid)
            assert sid not in amtool("silence", "query", "-q")
            assert sid in amtool("silence", "query", "--expired", "-q")
    finally:
        kill9(agents)

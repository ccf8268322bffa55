"""A real Prometheus (Debian's, `make peers`) with its `alerting.alertmanagers` pointing
at the gateway, unchanged but for the address and a token: its rule fires, the agents
open an incident and page; Prometheus stops (killed) and the alert resolves once its
endsAt passes without a re-send, and the incident resolves."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from harness.stamped import read_stamped
from harness.workers import health_port, kill9, start_agents
from schemas import Alert, Notification, decode
from streams.catalog import Catalog
from streams.expiry.worker import ExpiryWorker
from streams.settings import KafkaSettings
from tests.integration.connectors.support import TOKEN, make_gateway, serve

BINARY = shutil.which("prometheus")
pytestmark = pytest.mark.skipif(BINARY is None, reason="Prometheus not installed: make peers")
CONFIG = Path("examples/config/tocsin.yaml")
RULES = """
groups:
  - name: search
    interval: 1s
    rules:
      - alert: SearchDown
        expr: vector(1)
        labels: {severity: critical, service: search}
        annotations: {summary: search answers nothing, runbook_url: "https://runbooks.example/search"}
"""


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _wait(what: str, found: Callable[[], object], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}\n{log.read_text()[-3000:]}")


def test_prometheus_pages_through_the_gateway_and_the_alert_expires_when_it_stops(
    kafka_settings: KafkaSettings, topics: Catalog, tmp_path: Path
) -> None:
    assert BINARY is not None

    def notes(kind: str) -> list[tuple[float, Notification]]:
        stamped = read_stamped(kafka_settings, topics.name("notifications"))
        found = [(t, decode(Notification, v)) for t, _, v in stamped]
        return [(t, n) for t, n in found if n.kind == kind]

    def alerts() -> list[tuple[float, Alert]]:
        return [(t, decode(Alert, v))
                for t, _, v in read_stamped(kafka_settings, topics.name("alerts"))]  # fmt: skip

    agents_log, prom_log = tmp_path / "agents.log", tmp_path / "prometheus.log"
    agents = start_agents(kafka_settings, CONFIG, agents_log)
    expiry, stop = ExpiryWorker(kafka_settings), threading.Event()
    expiring = threading.Thread(target=expiry.run, args=(stop,), daemon=True)
    expiring.start()
    prom: subprocess.Popen[bytes] | None = None
    try:
        with serve(make_gateway(kafka_settings).app()) as gateway:
            (tmp_path / "rules.yml").write_text(RULES)
            (tmp_path / "prometheus.yml").write_text(f"""
global: {{evaluation_interval: 1s}}
rule_files: [{tmp_path / "rules.yml"}]
alerting:
  alertmanagers:
    - static_configs: [{{targets: ["{gateway.removeprefix("http://")}"]}}]
      authorization: {{credentials: {TOKEN}}}
""")
            ready = f"http://127.0.0.1:{health_port(agents_log, timeout=60)}/readyz"
            _wait("the agents to be ready", lambda: _ok(ready), agents_log, 120)
            prom = subprocess.Popen(
                [BINARY, f"--config.file={tmp_path / 'prometheus.yml'}",
                 f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                 f"--web.listen-address=127.0.0.1:{_port()}",
                 # firing alerts are re-sent every second, each valid for 4 s (endsAt)
                 "--rules.alert.resend-delay=1s"],
                stdout=prom_log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
            _wait("the first page", lambda: notes("trigger"), agents_log, 120)
            posted = [a for _, a in alerts() if a.rule == "SearchDown"]
            assert posted and all(a.status == "firing" for a in posted), prom_log.read_text()[
                -2000:
            ]
            first = posted[0]
            assert first.labels == {"alertname": "SearchDown", "severity": "critical",
                                    "service": "search"}  # fmt: skip
            assert first.severity == "critical" and first.summary == "search answers nothing"
            assert first.ends_at is not None, "Prometheus' endsAt travels as the expiry"
            kill9(prom)  # Prometheus stops sending: no resolved notification from it either
            _wait("the resolution after endsAt", lambda: notes("resolve"), agents_log, 120)
    finally:
        if prom is not None:
            kill9(prom)
        stop.set()
        expiring.join(30)
        kill9(agents)
    stamped = alerts()
    accepted = min(t for t, a in stamped if a.rule == "SearchDown")
    paged = min(t for t, _ in notes("trigger"))
    print(f"first page {paged - accepted:.3f}s after the gateway accepted Prometheus' alert")
    ended = [a for _, a in stamped if a.status == "resolved"]
    assert len({a.event_id for a in ended}) == 1 and "resolved_by" in ended[0].annotations
    incident = {n.incident_id for _, n in notes("trigger")}
    assert {n.incident_id for _, n in notes("resolve")} == incident and len(incident) == 1

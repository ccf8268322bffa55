"""A noisy tenant cannot delay another tenant's page: tenant acme floods the gateway's
intake from several senders while tenant beta sends one critical alert; acme is
answered 429 beyond its quota, and beta's alert is paged by the running agents within
the latency target of a page beside an alert storm (test_agents_storm.PAGE_WITHIN)."""

from __future__ import annotations

import hashlib
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import httpx

from connectors.slack.signature import SignatureVerifier
from harness.workers import kill9, start_agents
from schemas import Notification, decode
from schemas.config import Config
from streams.catalog import Catalog
from streams.gateway.app import Gateway, GatewayMetrics
from streams.gateway.limits import TenantLimit
from streams.health import Health
from streams.settings import KafkaSettings
from tests.integration.agents.test_agents_storm import PAGE_WITHIN
from tests.integration.agents.test_agents_worker import _wait, fast_config, read_topic
from tests.integration.connectors.support import SIGNING, serve

__all__ = ["fast_config"]  # the fixture, used by name

ACME, BETA = "acme-flood-token-0123456789", "beta-calm-token-0123456789"
SENDERS = 4
BATCH = 50  # alerts per request of the flood
ACME_ITEMS_PER_S = 200.0


def sha(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def installation(config: Path) -> Path:
    """The agents' config directory: the provider's (the fast test config) and the two
    tenants', each with the same routing, so beta's critical alert pages someone."""
    root = config.parent / "installation"
    text = config.read_text()
    (root / "tenants" / "acme").mkdir(parents=True)
    (root / "tenants" / "beta").mkdir(parents=True)
    (root / "tocsin.yaml").write_text(text)
    for tenant in ("acme", "beta"):
        (root / "tenants" / tenant / "tocsin.yaml").write_text(text)
    return root


def am(alerts: list[dict[str, object]]) -> dict[str, object]:
    return {"version": "4", "status": "firing", "alerts": alerts}


def alert(name: str, host: str, severity: str) -> dict[str, object]:
    stamp = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return {"status": "firing", "startsAt": stamp,
            "labels": {"alertname": name, "service": "search", "host": host,
                       "severity": severity},
            "annotations": {"summary": f"{name} on {host}"}}  # fmt: skip


def test_a_flooding_tenant_gets_429_and_another_tenants_critical_alert_still_pages(
    kafka_settings: KafkaSettings, topics: Catalog, fast_config: Path, tmp_path: Path
) -> None:
    log = tmp_path / "agents.log"
    worker = start_agents(kafka_settings, installation(fast_config), log)
    tenants = {
        "default": Config(),
        "acme": Config.model_validate({"tenant": "acme", "intake": {
            "tokens": [{"sha256": sha(ACME)}], "quota": {"items_per_s": ACME_ITEMS_PER_S}}}),
        "beta": Config.model_validate({"tenant": "beta", "intake": {
            "tokens": [{"sha256": sha(BETA)}]}}),
    }  # fmt: skip
    gw = Gateway(kafka_settings, set(), SignatureVerifier(SIGNING), None, Health(),
                 GatewayMetrics(), tenants=tenants,
                 tenant_limit=TenantLimit(requests=0, items=0))  # fmt: skip

    def notes() -> list[Notification]:
        committed = read_topic(kafka_settings, topics.name("notifications"))
        return [decode(Notification, v) for vs in committed.values() for v in vs]

    def paged(host: str) -> bool:
        return any(n.kind == "trigger" and f"on {host}" in n.title for n in notes())

    answers: Counter[int] = Counter()
    stop = threading.Event()
    try:
        with serve(gw.app()) as url:
            beta = httpx.Client(base_url=url, timeout=30,
                                headers={"Authorization": f"Bearer {BETA}"})  # fmt: skip
            # the agents are up and page beta before the flood
            first = beta.post("/v1/alertmanager", json=am([alert("BetaDown", "beta-01",
                                                                 "critical")]))  # fmt: skip
            assert first.status_code == 200, first.text
            _wait(lambda: paged("beta-01"), 120, "beta's first page", log, worker)

            def flood(sender: int) -> None:
                with httpx.Client(base_url=url, timeout=30,
                                  headers={"Authorization": f"Bearer {ACME}"}) as c:  # fmt: skip
                    n = 0
                    while not stop.is_set():
                        batch = [alert("AcmeNoise", f"acme-{sender}-{(n + i) % 500:03d}",
                                       "warning") for i in range(BATCH)]  # fmt: skip
                        answers[c.post("/v1/alertmanager", json=am(batch)).status_code] += 1
                        n += BATCH

            senders = [threading.Thread(target=flood, args=(i,)) for i in range(SENDERS)]
            for t in senders:
                t.start()
            deadline = time.monotonic() + 30
            while answers[429] < 20 and time.monotonic() < deadline:
                time.sleep(0.1)
            assert answers[429] >= 20, f"acme's flood is answered 429 beyond its quota: {answers}"
            sent = beta.post("/v1/alertmanager", json=am([alert("BetaDown", "beta-02",
                                                                "critical")]))  # fmt: skip
            sent_at = time.monotonic()
            assert sent.status_code == 200, sent.text
            _wait(lambda: paged("beta-02"), 60, "beta's page beside acme's flood", log, worker)
            latency = time.monotonic() - sent_at
            pages = [n for n in notes() if n.kind == "trigger" and "on beta-02" in n.title]
            assert {n.tenant for n in pages} == {"beta"}, "paged as beta's, by beta's config"
            flooding = all(t.is_alive() for t in senders)
            stop.set()
            for t in senders:
                t.join(60)
            beta.close()
            throttled = gw.metrics.registry.get_sample_value(
                "tocsin_gateway_tenant_throttled_total", {"tenant": "acme", "quota": "items"}
            )
        assert flooding, "acme was still flooding when beta was paged"
        assert latency <= PAGE_WITHIN, f"beta paged {latency:.1f} s after its alert"
        assert answers[200] > 0 and (throttled or 0) > 0, (answers, throttled)
        print(f"\nbeta paged {latency:.2f} s after its alert; acme's answers: {dict(answers)}")
        assert worker.poll() is None, "the agents never exit"
    finally:
        stop.set()
        kill9(worker)

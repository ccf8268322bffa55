from __future__ import annotations

import httpx
from prometheus_client import CollectorRegistry, Counter

from streams.health import Health, HealthServer


def test_endpoints_reflect_checks_and_heartbeat() -> None:
    now = [100.0]
    health = Health(stale_after=10, clock=lambda: now[0])
    connected = [False]
    health.add_check("broker", lambda: (connected[0], "metadata ok" if connected[0] else "down"))
    registry = CollectorRegistry()
    Counter("tocsin_test_total", "t", registry=registry).inc(3)
    server = HealthServer(health, registry, host="127.0.0.1", port=0).start()
    try:
        base = f"http://127.0.0.1:{server.port}"
        assert httpx.get(f"{base}/healthz").status_code == 200
        ready = httpx.get(f"{base}/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["broker"]["detail"] == "down"
        connected[0] = True
        assert httpx.get(f"{base}/readyz").status_code == 200
        assert "tocsin_test_total 3.0" in httpx.get(f"{base}/metrics").text
        now[0] += 11  # the loop stopped turning
        assert httpx.get(f"{base}/healthz").status_code == 503
        assert httpx.get(f"{base}/readyz").status_code == 503
    finally:
        server.stop()

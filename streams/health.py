"""Health and metrics endpoints every worker serves: /metrics, /healthz, /readyz.

Liveness says the process loop is turning (a heartbeat recently touched);
readiness runs the worker's own checks (broker connection, group membership,
partitions assigned) so Kubernetes routes traffic and counts a pod as
available only when it really does its job. A stdlib threaded server works
beside both the confluent-kafka loop and faust's asyncio loop.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

Check = Callable[[], tuple[bool, str]]


class Health:
    """Heartbeat for liveness, named checks for readiness."""

    def __init__(self, stale_after: float = 60.0, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._stale_after = stale_after
        self._beat = clock()
        self._checks: dict[str, Check] = {}

    def beat(self) -> None:
        """Call once per loop iteration: a loop stuck longer than stale_after is not live."""
        self._beat = self._clock()

    def add_check(self, name: str, check: Check) -> None:
        self._checks[name] = check

    def live(self) -> tuple[bool, dict[str, object]]:
        age = self._clock() - self._beat
        return age <= self._stale_after, {"last_heartbeat_s": round(age, 3)}

    def ready(self) -> tuple[bool, dict[str, object]]:
        results: dict[str, object] = {}
        ok = True
        for name, check in self._checks.items():
            try:
                passed, detail = check()
            except Exception as exc:
                passed, detail = False, f"check raised {type(exc).__name__}: {exc}"
            results[name] = {"ok": passed, "detail": detail}
            ok = ok and passed
        live, info = self.live()
        return ok and live, {"checks": results, **info}


class HealthServer:
    """Serves /metrics (Prometheus), /healthz and /readyz on a background thread."""

    def __init__(
        self, health: Health, registry: CollectorRegistry, host: str = "0.0.0.0", port: int = 9400
    ) -> None:
        self.health = health
        handler = _make_handler(health, registry)
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="health", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> HealthServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _make_handler(health: Health, registry: CollectorRegistry) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(200, generate_latest(registry), CONTENT_TYPE_LATEST)
            elif path in ("/healthz", "/livez"):
                ok, info = health.live()
                self._send(200 if ok else 503, orjson.dumps({"ok": ok, **info}))
            elif path == "/readyz":
                ok, info = health.ready()
                self._send(200 if ok else 503, orjson.dumps({"ok": ok, **info}))
            else:
                self._send(404, b'{"error":"not found"}')

        def _send(self, code: int, body: bytes, ctype: str = "application/json") -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return  # probes every few seconds would flood the worker's log

    return Handler

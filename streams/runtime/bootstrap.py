"""What every `tocsin run ...` worker process does around its loop: the health and
metrics server, the client libraries' log noise held back, SIGTERM and SIGINT turned
into a graceful stop (the loop finishes its batch, commits, and leaves its group).
Settings and logging come before: `tocsin`'s command group configures the log, and
`tocsin run` reads and checks the Kafka settings before any worker starts. Given the
Kafka settings, the stuck-client guard watches the worker's waits (`stuck.py`)."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, nullcontext
from threading import Event
from typing import Any

import structlog
from prometheus_client import CollectorRegistry

from streams.health import Health, HealthServer
from streams.runtime.stuck import StuckGuard
from streams.settings import KafkaSettings

log = structlog.get_logger(__name__)


@contextmanager
def serving(health: Health, registry: CollectorRegistry, *, host: str, port: int,
            signals: bool = True, kafka: KafkaSettings | None = None,
            topics: Iterable[str] = (), **about: Any) -> Iterator[Event]:  # fmt: skip
    """The health server (and with `kafka`, the stuck-client guard over the catalog's
    topics and `topics`) for the block's duration; yields the event SIGTERM/SIGINT set
    (with `signals` False the worker's framework handles them: faust does)."""
    server = HealthServer(health, registry, host=host, port=port).start()
    log.info("health_server", health_port=server.port, **about)
    stop = Event()
    if signals:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    try:
        with nullcontext() if kafka is None else guarded(kafka, topics):
            yield stop
    finally:
        server.stop()


def serve(run: Callable[[Event], None], health: Health, registry: CollectorRegistry, *,
          host: str, port: int, kafka: KafkaSettings | None = None,
          topics: Iterable[str] = (), **about: Any) -> None:  # fmt: skip
    """Run a worker's loop (`run(stop)`) until SIGTERM or SIGINT, then stop gracefully."""
    with serving(health, registry, host=host, port=port, kafka=kafka, topics=topics,
                 **about) as stop:  # fmt: skip
        run(stop)


@contextmanager
def guarded(settings: KafkaSettings, topics: Iterable[str] = ()) -> Iterator[None]:
    """The stuck-client guard over the catalog's topics and `topics`, for the block's
    duration (a worker's own loop, or an aiohttp application's); and the nodes the
    cluster has, heard of once for the counts that look for a cut-off node."""
    from streams.catalog import Catalog
    from streams.counted_nodes import hear_of_nodes

    guard = StuckGuard(settings, [*(t.name for t in Catalog(settings)), *topics]).start()
    hear_of_nodes(settings)
    try:
        yield
    finally:
        guard.stop()

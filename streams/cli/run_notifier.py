"""`tocsin run notifier`."""

from __future__ import annotations

import signal
import threading

import click
import structlog

from connectors.sinks.delivery import Sink
from streams.cli.run import health_host_option
from streams.health import Health, HealthServer
from streams.notifier.sinks import build_sinks
from streams.notifier.worker import Notifier, NotifierMetrics
from streams.settings import KafkaSettings


@click.command()
@health_host_option
@click.option("--health-port", default=9400, show_default=True, type=int)
def notifier(health_port: int, health_host: str) -> None:
    """Deliver the notifications outbox (Slack with SLACK_BOT_TOKEN, else the console)."""
    settings = KafkaSettings()
    sinks: dict[str, Sink] = {}
    metrics = NotifierMetrics()
    health = Health()
    worker = Notifier(settings, sinks, metrics=metrics, health=health)
    sinks.update(build_sinks(worker.state))  # the Slack sink keeps its ts map in the state
    server = HealthServer(health, metrics.registry, host=health_host, port=health_port).start()
    structlog.get_logger(__name__).info("health_server", health_port=server.port,
                                        sinks=sorted(sinks))  # fmt: skip
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        worker.run(stop)
    finally:
        server.stop()

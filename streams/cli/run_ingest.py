"""`tocsin run ingest`."""

from __future__ import annotations

import signal
import threading

import click

from streams.cli.run import health_host_option
from streams.health import Health, HealthServer
from streams.metrics import WorkerMetrics
from streams.settings import KafkaSettings

FORMATS = ("influx", "collectd", "otlp", "jsonlog")


@click.command()
@click.option("--format", "fmt", type=click.Choice(FORMATS), required=True,
              help="What the agents write on the input topic.")  # fmt: skip
@click.option("--topic", required=True, help="Input topic, used as named (no prefix).")
@health_host_option
@click.option("--health-port", default=9400, show_default=True, type=int)
def ingest(fmt: str, topic: str, health_port: int, health_host: str) -> None:
    """Decode an agent format from a Kafka topic into metrics or logs."""
    from streams.gateway.ingest import IngestWorker

    metrics, health = WorkerMetrics(), Health()
    worker = IngestWorker(KafkaSettings(), fmt, topic, metrics, health)
    server = HealthServer(health, metrics.registry, host=health_host, port=health_port).start()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        worker.run(stop)
    finally:
        server.stop()

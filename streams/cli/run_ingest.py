"""`tocsin run ingest`."""

from __future__ import annotations

import click

from streams.cli.run import health_host_option, health_port_option

FORMATS = ("influx", "collectd", "otlp", "jsonlog")


@click.command()
@click.option("--format", "fmt", type=click.Choice(FORMATS), required=True,
              help="What the agents write on the input topic.")  # fmt: skip
@click.option("--topic", required=True, help="Input topic, used as named (no prefix).")
@health_host_option
@health_port_option()
def ingest(fmt: str, topic: str, health_port: int, health_host: str) -> None:
    """Decode an agent format from a Kafka topic into metrics or logs."""
    from streams.ingest.worker import IngestWorker
    from streams.runtime.bootstrap import serve
    from streams.settings import KafkaSettings

    settings = KafkaSettings()
    worker = IngestWorker(settings, fmt, topic)
    serve(worker.run, worker.health, worker.metrics.registry, host=health_host,
          port=health_port, kafka=settings, topics=[topic])  # fmt: skip

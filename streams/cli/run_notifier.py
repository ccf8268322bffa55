"""`tocsin run notifier`."""

from __future__ import annotations

import click

from streams.cli.run import health_host_option, health_port_option


@click.command()
@health_host_option
@health_port_option()
def notifier(health_port: int, health_host: str) -> None:
    """Deliver the notifications outbox (Slack with SLACK_BOT_TOKEN, else the console)."""
    from connectors.sinks.delivery import Sink
    from streams.notifier.sinks import build_sinks
    from streams.notifier.worker import Notifier
    from streams.runtime.bootstrap import serve
    from streams.settings import KafkaSettings

    sinks: dict[str, Sink] = {}
    settings = KafkaSettings()
    worker = Notifier(settings, sinks)
    sinks.update(build_sinks(worker.state))  # the Slack sink keeps its ts map in the state
    serve(worker.run, worker.health, worker.metrics.registry, host=health_host,
          port=health_port, kafka=settings, sinks=sorted(sinks))  # fmt: skip

"""`tocsin run gateway`."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import click
from aiohttp import web

from schemas import ConfigError
from schemas.config import Config, load_config
from streams.health import Health
from streams.kafka import broker_reachable
from streams.settings import KafkaSettings


def _secret(name: str) -> str | None:
    path = os.environ.get(f"{name}_FILE")
    return Path(path).read_text().strip() if path else os.environ.get(name)


@click.command()
@click.option("--host", default="0.0.0.0", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--config", "config_paths", multiple=True,
              type=click.Path(exists=True, path_type=Path),
              help="Config with users and teams: who may act from Slack.")  # fmt: skip
def gateway(host: str, port: int, config_paths: tuple[Path, ...]) -> None:
    """HTTP intake (metrics, logs) and Slack interactivity, acknowledged after Kafka."""
    from streams.gateway.app import Gateway, GatewayMetrics

    settings = KafkaSettings()
    cfg: Config | None = None
    if config_paths:
        try:
            cfg = load_config(list(config_paths))
        except ConfigError as exc:
            raise click.ClickException(str(exc)) from exc
    tokens = {t.strip() for t in (_secret("TOCSIN_GATEWAY_TOKENS") or "").split(",") if t.strip()}
    secret = _secret("SLACK_SIGNING_SECRET")
    health = Health()
    reachable = [False]

    def probe() -> None:  # readiness: the broker answers, checked off the event loop
        while True:
            reachable[0] = broker_reachable(settings, timeout=3.0)
            health.beat()
            time.sleep(5)

    threading.Thread(target=probe, daemon=True).start()
    health.add_check("kafka", lambda: (reachable[0], "broker answers" if reachable[0]
                                       else "broker not reachable"))  # fmt: skip
    from connectors.slack.signature import SignatureVerifier

    gw = Gateway(settings, tokens, SignatureVerifier(secret) if secret else None, cfg, health,
                 GatewayMetrics())  # fmt: skip
    click.echo(f"gateway on http://{host}:{port} (tokens: {len(tokens)}, "
               f"slack signing: {'on' if secret else 'off'})")  # fmt: skip
    web.run_app(gw.app(), host=host, port=port, print=None, shutdown_timeout=10)

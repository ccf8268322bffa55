"""`tocsin run gateway`."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import click
import structlog
from aiohttp import web

from schemas import ConfigError
from schemas.config import Config, load_config
from schemas.types import parse_duration
from streams.health import Health
from streams.settings import KafkaSettings

log = structlog.get_logger(__name__)


def secret(name: str) -> str | None:
    """``NAME`` from the environment or the file named by ``NAME_FILE`` (never logged)."""
    path = os.environ.get(f"{name}_FILE")
    return Path(path).read_text().strip() if path else os.environ.get(name)


def _duration(option: str, text: str) -> timedelta:
    try:
        value = parse_duration(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from exc
    if not isinstance(value, timedelta):
        raise click.BadParameter(f"{text!r}: use e.g. 5m, 1h, 7d", param_hint=option)
    return value


def secret_set(name: str) -> set[str]:
    return {t.strip() for t in (secret(name) or "").split(",") if t.strip()}


@click.command()
@click.option("--host", default="0.0.0.0", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--config", "config_paths", multiple=True,
              type=click.Path(exists=True, path_type=Path),
              help="Config with users and teams: who may act from Slack.")  # fmt: skip
@click.option("--socket-mode/--no-socket-mode", default=None,
              help="Receive Slack actions over Socket Mode (default: on when SLACK_APP_TOKEN "
                   "is set).")  # fmt: skip
@click.option(
    "--ack-timeout",
    default=10.0,
    show_default=True,
    type=float,
    help="Seconds to wait for Kafka's acknowledgement before answering 503.",
)
@click.option(
    "--queue-max",
    default=100_000,
    show_default=True,
    type=int,
    help="Producer queue bound; beyond it requests get 429.",
)
@click.option("--max-ahead", default="5m", show_default=True,
              help="Refuse samples and log records timed further ahead of the gateway's clock "
                   "(at most the processor's max_future_skew).")  # fmt: skip
@click.option("--max-age", default="7d", show_default=True,
              help="Refuse samples and log records older than this.")  # fmt: skip
def gateway(host: str, port: int, config_paths: tuple[Path, ...], socket_mode: bool | None,
            ack_timeout: float, queue_max: int, max_ahead: str, max_age: str) -> None:  # fmt: skip
    """HTTP intake (metrics, logs, Alertmanager, PagerDuty v2, remote-write) and Slack."""
    from connectors.slack.signature import SignatureVerifier
    from streams.gateway.app import RUNNER_ARGS, Gateway, GatewayMetrics
    from streams.gateway.directory import directory_from_env

    settings = KafkaSettings()
    cfg: Config | None = None
    if config_paths:
        try:
            cfg = load_config(list(config_paths))
        except ConfigError as exc:
            raise click.ClickException(str(exc)) from exc
    tokens = secret_set("TOCSIN_GATEWAY_TOKENS")
    signing = secret("SLACK_SIGNING_SECRET")
    gw = Gateway(settings, tokens, SignatureVerifier(signing) if signing else None, cfg,
                 Health(), GatewayMetrics(),
                 directory=None if cfg else directory_from_env(os.environ.get(
                     "TOCSIN_SLACK_RESPONDERS")),
                 pagerduty_keys=secret_set("TOCSIN_PAGERDUTY_INTAKE_KEYS"),
                 ack_timeout=ack_timeout, queue_max=queue_max,
                 max_ahead=_duration("--max-ahead", max_ahead),
                 max_behind=_duration("--max-age", max_age))  # fmt: skip
    if not tokens:
        log.warning("gateway_open", why="TOCSIN_GATEWAY_TOKENS is empty: no bearer auth")
    app = gw.app()
    app_token = secret("SLACK_APP_TOKEN")
    if socket_mode or (socket_mode is None and app_token):
        if not app_token:
            raise click.ClickException("--socket-mode needs SLACK_APP_TOKEN (xapp-...)")
        from streams.gateway.slack import enable_socket_mode

        enable_socket_mode(
            gw, app, app_token, secret("SLACK_BOT_TOKEN"), os.environ.get("TOCSIN_SLACK_BASE_URL")
        )
    log.info("gateway_listening", url=f"http://{host}:{port}", tokens=len(tokens),
             slack_signing=bool(signing), socket_mode=bool(app_token and socket_mode is not False),
             responders="config" if cfg else "TOCSIN_SLACK_RESPONDERS")  # fmt: skip
    web.run_app(app, host=host, port=port, print=None, shutdown_timeout=10, **RUNNER_ARGS)

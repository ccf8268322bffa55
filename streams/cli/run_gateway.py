"""`tocsin run gateway`.

Secure by default: the gateway listens on every interface (what a container needs) and
then refuses to start without credentials, unless it listens on loopback only (local
development: open, with a warning) or is told ``--insecure-no-auth``.
"""

from __future__ import annotations

import contextlib
import os
import sys
from datetime import timedelta
from pathlib import Path

import click
import structlog
from aiohttp import web

from schemas import ConfigError
from schemas.config import Config, load_installation
from schemas.types import parse_duration
from streams.health import Health
from streams.settings import KafkaSettings, secret

log = structlog.get_logger(__name__)


LOOPBACK = {"127.0.0.1", "::1", "localhost"}
CREDENTIALS = ("TOCSIN_GATEWAY_TOKENS", "TOCSIN_PAGERDUTY_INTAKE_KEYS")
# an intake's own tokens, valid on its route only
SOURCE_TOKENS = {"zabbix": "TOCSIN_ZABBIX_TOKENS", "checkmk": "TOCSIN_CHECKMK_TOKENS"}


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
@click.option("--host", default="0.0.0.0", show_default=True,
              help="Listen address. Beyond loopback the gateway needs credentials "
                   "(TOCSIN_GATEWAY_TOKENS, TOCSIN_PAGERDUTY_INTAKE_KEYS) or "
                   "--insecure-no-auth.")  # fmt: skip
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--config", "config_paths", multiple=True,
              type=click.Path(exists=True, path_type=Path),
              help="Config (an installation: the provider's files and tenants/<id>/) with "
                   "users and teams (who may act from Slack) and each tenant's intake "
                   "credentials.")  # fmt: skip
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
@click.option("--insecure-no-auth", is_flag=True, envvar="TOCSIN_GATEWAY_INSECURE_NO_AUTH",
              help="Let anyone who reaches the gateway write, on routes whose credentials "
                   "are not configured. Only for a trusted network.")  # fmt: skip
@click.option("--rate-limit", default=200.0, show_default=True, type=click.FloatRange(min=0),
              envvar="TOCSIN_GATEWAY_RATE_LIMIT",
              help="Requests per second per credential before 429 (0: no limit).")  # fmt: skip
@click.option("--rate-burst", default=400, show_default=True, type=click.IntRange(min=1),
              envvar="TOCSIN_GATEWAY_RATE_BURST",
              help="Requests a credential may send at once above its rate.")  # fmt: skip
@click.option("--tenant-rate", default=None, type=click.FloatRange(min=0),
              envvar="TOCSIN_GATEWAY_TENANT_RATE",
              show_default="300 with several tenants, else 0",
              help="Requests per second per tenant before 429 (0: no limit); a tenant's "
                   "intake.quota overrides it.")  # fmt: skip
@click.option("--tenant-items", default=None, type=click.FloatRange(min=0),
              envvar="TOCSIN_GATEWAY_TENANT_ITEMS",
              show_default="10000 with several tenants, else 0",
              help="Items (samples, log records, alerts) per second per tenant before 429 "
                   "(0: no limit); a tenant's intake.quota overrides it.")  # fmt: skip
@click.option("--tenant-burst", default=2.0, show_default=True,
              type=click.FloatRange(min=0, min_open=True), envvar="TOCSIN_GATEWAY_TENANT_BURST",
              help="Seconds of a tenant's rates it may send at once.")  # fmt: skip
@click.option("--max-ahead", default="5m", show_default=True,
              help="Refuse samples and log records timed further ahead of the gateway's clock "
                   "(at most the processor's max_future_skew).")  # fmt: skip
@click.option("--max-age", default="7d", show_default=True,
              help="Refuse samples and log records older than this.")  # fmt: skip
def gateway(host: str, port: int, config_paths: tuple[Path, ...], socket_mode: bool | None,
            ack_timeout: float, queue_max: int, insecure_no_auth: bool, rate_limit: float,
            rate_burst: int, tenant_rate: float | None, tenant_items: float | None,
            tenant_burst: float,
            max_ahead: str, max_age: str) -> None:  # fmt: skip
    """HTTP intake (metrics, logs, Alertmanager, PagerDuty v2, remote-write) and Slack."""
    from connectors.slack.signature import SignatureVerifier
    from streams.gateway.app import RUNNER_ARGS, Gateway, GatewayMetrics
    from streams.gateway.directory import directory_from_env
    from streams.gateway.limits import RateLimit, default_tenant_limit
    from streams.gateway.sns import SnsIntake

    big_buffers_to_mmap()
    settings = KafkaSettings()
    cfg: Config | None = None
    tenants: dict[str, Config] = {}
    if config_paths:
        try:
            tenants = dict(load_installation(list(config_paths)).tenants)
        except ConfigError as exc:
            raise click.ClickException(str(exc)) from exc
        cfg = tenants.get("default")
    tokens = secret_set("TOCSIN_GATEWAY_TOKENS")
    intake_keys = secret_set("TOCSIN_PAGERDUTY_INTAKE_KEYS")
    source_tokens = {src: frozenset(secret_set(var)) for src, var in SOURCE_TOKENS.items()}
    source_tokens = {src: given for src, given in source_tokens.items() if given}
    signing = secret("SLACK_SIGNING_SECRET")
    app_token = secret("SLACK_APP_TOKEN")
    tenant_credentials = any(c.intake.tokens or c.intake.pagerduty_keys or c.intake.sns_topics
                             for c in tenants.values())  # fmt: skip
    insecure = open_access(host, tokens, intake_keys, bool(signing or app_token),
                           insecure_no_auth, sources=sorted(source_tokens),
                           tenant_credentials=tenant_credentials)  # fmt: skip
    quota = default_tenant_limit(len(tenants), tenant_rate, tenant_items, tenant_burst)
    try:
        gw = Gateway(settings, tokens, SignatureVerifier(signing) if signing else None, cfg,
                     Health(), GatewayMetrics(),
                     directory=None if cfg else directory_from_env(os.environ.get(
                         "TOCSIN_SLACK_RESPONDERS")),
                     pagerduty_keys=intake_keys, ack_timeout=ack_timeout, queue_max=queue_max,
                     insecure=insecure, rate_limit=RateLimit(rate_limit, rate_burst),
                     max_ahead=_duration("--max-ahead", max_ahead),
                     max_behind=_duration("--max-age", max_age),
                     source_tokens=source_tokens,
                     sns_intake=SnsIntake.from_env(os.environ.get("TOCSIN_SNS_TOPIC_ARNS")),
                     tenants=tenants,
                     tenant_limit=quota,
                     )  # fmt: skip
    except ConfigError as exc:  # a tenant lists a credential of the environment
        raise click.ClickException(str(exc)) from exc
    app = gw.app()
    if socket_mode or (socket_mode is None and app_token):
        if not app_token:
            raise click.ClickException("--socket-mode needs SLACK_APP_TOKEN (xapp-...)")
        from streams.gateway.slack import enable_socket_mode

        enable_socket_mode(
            gw, app, app_token, secret("SLACK_BOT_TOKEN"), os.environ.get("TOCSIN_SLACK_BASE_URL")
        )
    log.info("gateway_listening", url=f"http://{host}:{port}", tokens=len(tokens),
             intake_keys=len(intake_keys), source_tokens=sorted(source_tokens), open=insecure,
             rate_limit=f"{rate_limit:g}/s burst {rate_burst}" if rate_limit else "off",
             tenant_quota=f"{quota.requests:g} requests/s, {quota.items:g} items/s, burst "
                          f"{quota.burst_s:g} s" if quota.requests or quota.items else "off",
             slack_signing=bool(signing), socket_mode=bool(app_token and socket_mode is not False),
             responders="config" if cfg else "TOCSIN_SLACK_RESPONDERS")  # fmt: skip
    from streams.runtime.bootstrap import guarded

    # a producer stuck after a broker restart would answer every source 503 for ever
    with guarded(settings):
        web.run_app(app, host=host, port=port, print=None, shutdown_timeout=10, **RUNNER_ARGS)


def open_access(host: str, tokens: set[str], intake_keys: set[str], slack: bool,
                insecure: bool, sources: list[str] | None = None,
                tenant_credentials: bool = False) -> bool:  # fmt: skip
    """Whether routes without configured credentials let anyone in. Refuses to start a
    gateway beyond loopback with no credentials at all, unless told ``--insecure-no-auth``.
    Bearer tokens also authenticate /v2/enqueue, so tokens alone leave no route open, and
    so do the tenants' own credentials (their ``intake:``)."""
    if tokens or tenant_credentials:
        return False
    if insecure:
        log.warning("gateway_insecure_no_auth", host=host,
                    why="--insecure-no-auth: routes without credentials accept anyone")  # fmt: skip
        return True
    if intake_keys or sources:
        served = ["/v2/enqueue (by routing key)"] if intake_keys else []
        served += [f"/v1/{source} (its own tokens)" for source in sources or ()]
        log.warning("gateway_intakes_closed", unset="TOCSIN_GATEWAY_TOKENS",
                    why=f"only {', '.join(served)} and Slack accept requests")  # fmt: skip
        return False
    if host.strip("[]") in LOOPBACK:
        log.warning("gateway_open_on_loopback", host=host,
                    why="no credentials configured: anyone on this machine may write")  # fmt: skip
        return True
    if slack:
        log.warning("gateway_intakes_closed", unset=list(CREDENTIALS),
                    why="only Slack (signed requests) is served; every intake refuses")  # fmt: skip
        return False
    raise click.ClickException(
        f"refusing to listen on {host} without credentials: set TOCSIN_GATEWAY_TOKENS "
        "(bearer tokens, comma-separated; or TOCSIN_GATEWAY_TOKENS_FILE) and/or "
        "TOCSIN_PAGERDUTY_INTAKE_KEYS (routing keys accepted on /v2/enqueue), listen on "
        "loopback only (--host 127.0.0.1), or accept an open gateway with "
        "--insecure-no-auth (TOCSIN_GATEWAY_INSECURE_NO_AUTH=true)"
    )


MMAP_THRESHOLD = 1 << 20


def big_buffers_to_mmap() -> None:
    """Request bodies of megabytes allocated by mmap and returned to the system when
    freed: glibc otherwise raises its mmap threshold after the first big free, serves the
    next bodies from the heap and keeps up to twice that free but resident (a gateway
    that took a few 16 MB bodies held 60-75 MB more instead of 45). The decoding
    processes inherit the setting through the environment."""
    import ctypes
    import ctypes.util

    os.environ.setdefault("MALLOC_MMAP_THRESHOLD_", str(MMAP_THRESHOLD))
    name = ctypes.util.find_library("c")
    if name is None or not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(name).mallopt(-3, MMAP_THRESHOLD)  # M_MMAP_THRESHOLD

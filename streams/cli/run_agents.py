"""`tocsin run agents --config PATH`."""

from __future__ import annotations

import gc
from pathlib import Path
from threading import Event
from typing import Any

import click
import structlog

from schemas import ConfigError
from schemas.config import load_installation
from streams.cli.run import health_host_option, health_port_option
from streams.health import Health
from streams.logs import stdlib_handlers
from streams.settings import KafkaSettings


@click.command()
@click.option("--config", "config_paths", multiple=True, required=True,
              type=click.Path(exists=True, path_type=Path))  # fmt: skip
@click.option("--tick-every", default=1.0, show_default=True,
              help="Seconds between timer passes (escalation, group_wait, snooze).")  # fmt: skip
@health_host_option
@health_port_option()
@click.option("--datadir", default=None, help="faust's data directory.")
@click.option("--faust-loglevel", default="warning", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"]),
              help="Level of faust's own log (rebalances, recovery).")  # fmt: skip
def agents(config_paths: tuple[Path, ...], tick_every: float, health_port: int, health_host: str,
           datadir: str | None, faust_loglevel: str) -> None:  # fmt: skip
    """Turn alert transitions into incidents, pages and a ledger (faust-streaming), each
    tenant's (`tenants/<id>/` beside the provider's files) with its own configuration."""
    try:
        cfg = load_installation(list(config_paths))
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    # faust is imported here: it is slow to import and only this worker needs it
    from faust import Worker

    from streams.agents.app import build_app
    from streams.agents.metrics import AgentMetrics

    metrics = AgentMetrics()
    app = build_app(KafkaSettings(), cfg, tick_every=tick_every, datadir=datadir, metrics=metrics)
    health = Health(stale_after=max(30.0, 10 * tick_every))
    health.add_check("faust", lambda: (not app.rebalancing, "rebalancing"
                                       if app.rebalancing else "running"))  # fmt: skip
    follower = app.conf.tocsin_follower
    health.add_check(
        "suppressions",
        lambda: (follower.caught_up, "caught up" if follower.caught_up else "reading backlog"),
    )

    @app.timer(interval=1.0)  # type: ignore[untyped-decorator]
    async def heartbeat() -> None:
        health.beat()

    from streams.agents.watchdog import Stall, StallWatchdog, install
    from streams.catalog import Catalog

    settings = app.conf.tocsin_settings
    catalog = Catalog(settings)
    # the router's inputs are not faust's
    inputs = [catalog.name("incident-work"), catalog.name("heartbeats")]
    log = structlog.get_logger(__name__)

    def on_stall(stall: Stall) -> None:
        log.warning("partition_stalled", topic=stall.topic, partition=stall.partition,
                    committed=stall.committed, end=stall.end,
                    for_s=round(stall.for_s, 1))  # fmt: skip
        metrics.stalls.labels(topic=stall.topic).inc()

    watchdog = StallWatchdog(settings, app.conf.id, inputs)
    # readiness: false while the router cannot fetch, the outbox's records wait for their
    # acknowledgements or the watchdog's offset queries fail (the broker away)
    for wait in [*app.conf.tocsin_waits, watchdog.wait]:
        health.add_check(wait.worker, wait.check)
    install(app, watchdog, on_stall)
    from streams.runtime.bootstrap import serving

    # group states are acyclic plain objects and a transition allocates hundreds of
    # small ones: collect young garbage rarely, and keep what startup built (modules,
    # config, pydantic's validators, faust) out of every full collection
    gc.set_threshold(50_000, 20, 100)
    gc.collect()
    gc.freeze()
    # until faust starts, SIGTERM and SIGINT end the wait for the broker below; faust then
    # handles them itself: it stops its agents and commits
    with serving(health, metrics.registry, host=health_host, port=health_port,
                 kafka=settings) as stop:  # fmt: skip
        created = _ready_to_join(settings, app, health, stop)
        if created is None:
            log.info("stopped_before_start", waited_for="the broker")
            return
        if created:
            log.info("changelogs_created", topics=created)
        # faust's lines as the worker's own JSON ones, on the same stream
        app.conf.loghandlers = stdlib_handlers()
        # redirect_stdouts off: mode would turn stderr into a logger, and every line the
        # handler then writes (faust's, aiokafka's, librdkafka's) would be dropped by its
        # guard against recursion
        worker = Worker(app, loglevel=faust_loglevel, quiet=True, redirect_stdouts=False,
                        logging_config={"version": 1, "disable_existing_loggers": False,
                                        "root": {"level": faust_loglevel.upper()}})  # fmt: skip
        # faust's terminal spinner handler sets the root logger to DEBUG: every debug call
        # of faust and aiokafka (several per message sent) would then build a LogRecord
        worker.spinner = None
        worker.execute_from_commandline()


def _ready_to_join(settings: KafkaSettings, app: Any, health: Health, stop: Event
                   ) -> list[str] | None:  # fmt: skip
    """Wait for the broker, then for the agents' changelogs (created when missing), before
    faust starts; the changelogs created, or None when told to stop first. faust gives up
    for good when it cannot bootstrap, and a worker started during an outage would then
    crash-loop, its restarts spaced further apart the longer the outage lasts; waiting
    here, it starts as soon as the broker answers, live and not ready meanwhile. And a
    changelog faust's consumer does not yet know when it joins is one it never restores
    (changelogs.py)."""
    from confluent_kafka import KafkaException

    from streams.agents.changelogs import declare
    from streams.kafka import KafkaWait, broker_reachable

    wait = KafkaWait("agents/start")
    health.add_check(wait.worker, wait.check)
    while True:
        try:
            if broker_reachable(settings):
                created = declare(settings, app)
                wait.progressed()
                return created
            wait.waiting(f"the broker at {settings.bootstrap_servers}")
        except (KafkaException, TimeoutError) as exc:
            wait.waiting("the agents' changelogs", exc)
        health.beat()
        if stop.wait(1.0):
            return None

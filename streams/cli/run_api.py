"""`tocsin run api --config PATH`."""

from __future__ import annotations

from pathlib import Path

import click
import structlog
from pydantic import ValidationError

from schemas import ConfigError
from schemas.config import load_installation
from streams.settings import KafkaSettings


@click.command()
@click.option("--config", "config_paths", multiple=True, required=True,
              type=click.Path(exists=True, path_type=Path))  # fmt: skip
@click.option("--host", default="0.0.0.0", show_default=True, envvar="TOCSIN_API_HOST")
@click.option("--port", default=8081, show_default=True, type=int, envvar="TOCSIN_API_PORT")
def api(config_paths: tuple[Path, ...], host: str, port: int) -> None:
    """The REST API (/api/v1) and the web console (/console) over the store; actions
    become Commands on Kafka. Tokens are the config's `api_tokens`; /readyz, /healthz and
    /api/v1/openapi.json are open."""
    from aiohttp import web

    from streams.api.app import Api
    from streams.api.server import application
    from streams.console.session import ConsoleSettings
    from streams.status.config import load_status_pages
    from streams.store.db import StoreSettings, open_engine, settings_error

    try:
        installation = load_installation(list(config_paths))
        cfg = installation.provider
        # every tenant's status pages, each checked against its own services
        status_pages = load_status_pages(list(config_paths), installation.tenants)
        store = StoreSettings()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    except ValidationError as exc:
        raise click.ClickException(f"invalid store settings: {settings_error(exc)}") from None
    try:
        ConsoleSettings()
    except ValidationError as exc:
        raise click.ClickException(f"invalid console settings: {settings_error(exc)}") from None
    log = structlog.get_logger(__name__)
    if not any(c.api_tokens for c in installation.tenants.values()):
        log.warning("api_no_tokens", hint="every request will get 401: add api_tokens to the "
                    "config (`tocsin token new`)")  # fmt: skip
    settings = KafkaSettings()
    service = Api(settings, open_engine(store), cfg, tenants=installation.tenants)
    app = application(service, status_pages)

    async def started(_: web.Application) -> None:
        log.info("api_started", url=f"http://{host}:{port}/api/v1",
                 console=f"http://{host}:{port}/console/", store=store.describe(),
                 tokens=len(service.tokens))  # fmt: skip

    app.on_startup.append(started)
    from streams.runtime.bootstrap import guarded

    # the console's commands go through the API's producer: one stuck would refuse them
    with guarded(settings):
        web.run_app(app, host=host, port=port, print=None, access_log=None)

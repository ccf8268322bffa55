"""`tocsin projector rebuild`: the store rebuilt from the topics."""

from __future__ import annotations

import signal
import threading
import time

import click
from pydantic import ValidationError

from streams.settings import KafkaSettings


@click.group()
def projector() -> None:
    """The SQL store the API reads (see `tocsin run projector`)."""


@projector.command()
@click.option("--yes", is_flag=True, help="Do not ask before emptying the store.")
def rebuild(yes: bool) -> None:
    """Empty the store and project every incident topic again from its beginning.
    Stop the running projectors first; start them again afterwards."""
    from streams.store.db import StoreSettings, open_engine, settings_error
    from streams.store.projector import Projector

    try:
        store = StoreSettings()
    except ValidationError as exc:
        raise click.ClickException(f"invalid store settings: {settings_error(exc)}") from None
    if not yes:
        click.confirm(f"Empty {store.describe()} and rebuild it from the topics?", abort=True)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    started = time.monotonic()
    read = Projector(KafkaSettings(), open_engine(store)).rebuild(stop)
    took = time.monotonic() - started
    click.echo(f"rebuilt {store.describe()}: {read:,} records in {took:.1f}s")

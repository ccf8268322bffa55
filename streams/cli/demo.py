"""`tocsin demo`: the end-to-end demonstration on the local broker."""

from __future__ import annotations

import time
from pathlib import Path

import click

from streams.admin import create_topics
from streams.catalog import Catalog
from streams.kafka import make_admin
from streams.logs import configure_logging
from streams.settings import KafkaSettings


@click.command()
# above 30x, the pipeline's own latency (about a second of wall time) becomes minutes
# of scenario time and eats the margins that keep every run's story the same
@click.option("--speed", default=10.0, show_default=True, type=click.FloatRange(1, 30),
              help="How many times faster than real time the fault plan runs; the agents' "
                   "timers (group_wait, escalation) are divided by the same factor.")  # fmt: skip
@click.option("--burst", is_flag=True, help="Only send a burst of samples and read it back.")
@click.option("--workdir", default=".demo", show_default=True, type=click.Path(path_type=Path))
@click.option("--keep-topics", is_flag=True,
              help="Keep this run's topics on the broker (default: delete them).")  # fmt: skip
@click.option("--console", is_flag=True,
              help="Also run the projector and the API with the web console, and keep them "
                   "up after the story until Ctrl-C (make demo does).")  # fmt: skip
def demo(speed: float, burst: bool, workdir: Path, keep_topics: bool, console: bool) -> None:
    """Fleet -> processor -> agents -> pages, with each incident's timeline at the end."""
    if burst:
        from streams.demo.burst import run_burst

        settings = KafkaSettings()
        create_topics(make_admin(settings), Catalog(settings))
        raise SystemExit(run_burst(settings, click.echo))
    from streams.demo.pipeline import Demo

    # a fresh topic prefix per run: every demo starts from empty topics
    settings = KafkaSettings(topic_prefix=f"demo{int(time.time())}.")
    run = Demo(settings, workdir / settings.topic_prefix.rstrip("."), speed, click.echo,
               console=console)  # fmt: skip
    # the terminal tells the story; the demo's own client lines (a retry while a fresh
    # broker loads its coordinators) go beside the workers' logs
    run.workdir.mkdir(parents=True, exist_ok=True)
    configure_logging(file=(run.workdir / "demo.log").open("a", buffering=1))
    click.echo(f"the demo's own log: {run.workdir / 'demo.log'}")
    try:
        code = run.run()
        run.hold()
    except KeyboardInterrupt:
        click.echo("interrupted: stopping the workers")
        code = 130
    finally:
        run.stop_workers()
        if keep_topics:
            click.echo(f"the topics of this run are kept: prefix {settings.topic_prefix}")
        else:
            # every run has a prefix of its own: without this the broker grows by a run's
            # topics (and their open segment files) every time
            click.echo(run.delete_topics())
    raise SystemExit(code)

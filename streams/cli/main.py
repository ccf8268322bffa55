"""The `tocsin` command: one group, one module per command family."""

from __future__ import annotations

import sys

import click

from streams.cli.broker import broker
from streams.cli.demo import demo
from streams.cli.topics import topics
from streams.logs import configure_logging

COMMANDS: list[click.Command] = [broker, topics, demo]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """tocsin: incident response on Apache Kafka."""
    configure_logging()


for _command in COMMANDS:
    cli.add_command(_command)


def main() -> None:
    try:
        cli.main(standalone_mode=True)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()

"""The `tocsin` command. Subcommands load lazily: `tocsin broker status` must not
pay for importing faust or river.

To add a command, add one line to COMMANDS (top level) or streams/cli/run.py
(`tocsin run <worker>`): "name": "module:attribute".
"""

from __future__ import annotations

import importlib
import sys

import click

from streams.logs import configure_logging

COMMANDS: dict[str, str] = {
    "broker": "streams.cli.broker:broker",
    "topics": "streams.cli.topics:topics",
    "demo": "streams.cli.demo:demo",
    "run": "streams.cli.run:run",
    "rules": "streams.cli.rules:rules",
    "backtest": "streams.cli.backtest:backtest",
    "eval": "streams.cli.eval:eval_",
    "config": "streams.cli.config:config",
    "oncall": "streams.cli.oncall:oncall",
    "projector": "streams.cli.projector:projector",
    "incidents": "streams.cli.incidents:incidents",
    "silence": "streams.cli.silences:silence",
    "report": "streams.cli.reports:report",
    "postmortem": "streams.cli.reports:postmortem",
    "token": "streams.cli.token:token",
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def __init__(self, *args: object, lazy: dict[str, str], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self._lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self._lazy:
            module, _, attr = self._lazy[cmd_name].partition(":")
            command = getattr(importlib.import_module(module), attr)
            assert isinstance(command, click.Command)
            return command
        return super().get_command(ctx, cmd_name)


@click.group(cls=LazyGroup, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """tocsin: incident response on Apache Kafka."""
    configure_logging()


def main() -> None:
    try:
        cli.main(standalone_mode=True)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()

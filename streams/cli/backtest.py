"""`tocsin backtest --rules PATH --input FILE`: what these rules would have fired."""

from __future__ import annotations

from pathlib import Path

import click

from schemas import ConfigError
from schemas.rules import load_rule_files
from streams.processor.backtest import backtest as run_backtest


@click.command()
@click.option(
    "--rules",
    "rule_paths",
    multiple=True,
    required=True,
    type=click.Path(exists=True, path_type=Path),
    help="Rule file or directory.",
)
@click.option(
    "--input",
    "input_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="NDJSON of MetricSample / LogRecord, in recorded order.",
)
@click.option("--quiet", is_flag=True, help="Only the per-rule summary.")
def backtest(rule_paths: tuple[Path, ...], input_path: Path, quiet: bool) -> None:
    """Replay a recorded stream through the rules and print transitions and a summary."""
    try:
        pack = load_rule_files(list(rule_paths))
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    with input_path.open("rb") as f:
        result = run_backtest(pack, f)
    if not quiet:
        for a in result.transitions:
            value = "" if a.value is None else f" value={a.value:.4g}"
            click.echo(
                f"{a.produced_at:%Y-%m-%dT%H:%M:%SZ} {a.status:8} {a.rule} "
                f"{_labels(a.labels)}{value}"
            )
    click.echo(
        f"\n{result.records} records, {len(result.transitions)} transitions, "
        f"{result.late} late, {len(result.invalid)} invalid"
    )
    for lineno, error in result.invalid[:10]:
        click.echo(f"  line {lineno}: {error}")
    click.echo(f"\n{'rule':32} {'fired':>6} {'firing for':>12}")
    for name, s in result.summary.items():
        click.echo(f"{name:32} {s.fired:>6} {_dur(s.firing_seconds):>12}")


def _labels(labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()) if k != "alertname")


def _dur(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"

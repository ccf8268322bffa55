"""`tocsin backtest --rules PATH --input FILE`: what these rules would have fired."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click

from streams.cli.rules import load_pack, tenants_option
from streams.processor.backtest import TimeRange, backtest_partitions
from streams.processor.backtest import backtest as run_backtest

_FORMATS = ["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%d %H:%M:%S"]


@click.command()
@click.option(
    "--rules",
    "rule_paths",
    multiple=True,
    required=True,
    type=click.Path(exists=True, path_type=Path),
    help="Rule file or directory.",
)
@tenants_option
@click.option(
    "--input",
    "input_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="NDJSON of MetricSample / LogRecord, in recorded order.",
)
@click.option(
    "--topic",
    default=None,
    help="Instead of --input: a catalog topic (metrics, logs) read from Kafka, one "
    "engine per partition as the worker runs.",
)
@click.option(
    "--since",
    type=click.DateTime(_FORMATS),
    default=None,
    help="Only records with event time >= this (UTC unless an offset is given).",
)
@click.option("--until", type=click.DateTime(_FORMATS), default=None,
              help="Only records with event time < this.")  # fmt: skip
@click.option("--quiet", is_flag=True, help="Only the per-rule summary.")
def backtest(
    rule_paths: tuple[Path, ...],
    config_paths: tuple[Path, ...],
    input_path: Path | None,
    topic: str | None,
    since: datetime | None,
    until: datetime | None,
    quiet: bool,
) -> None:
    """Replay a recorded stream through the rules and print transitions and a summary."""
    if (input_path is None) == (topic is None):
        raise click.UsageError("give exactly one of --input FILE or --topic NAME")
    pack = load_pack(rule_paths, config_paths)
    window = TimeRange(_utc(since), _utc(until)) if since or until else None
    if input_path is not None:
        with input_path.open("rb") as f:
            result = run_backtest(pack, f, window)
    else:
        assert topic is not None
        result = backtest_partitions(pack, _read_topic(topic), window)
    if not quiet:
        for a in result.transitions:
            value = "" if a.value is None else f" value={a.value:.4g}"
            tenant = "" if a.tenant == "default" else f"tenant={a.tenant} "
            click.echo(
                f"{a.produced_at:%Y-%m-%dT%H:%M:%SZ} {a.status:8} {a.rule} {tenant}"
                f"{_labels(a.labels)}{value}"
            )
    click.echo(
        f"\n{result.records} records, {len(result.transitions)} transitions, "
        f"{result.late} late, {len(result.invalid)} invalid"
        + (f", {result.skipped} outside the time range" if window else "")
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


def _utc(at: datetime | None) -> datetime | None:
    if at is None:
        return None
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at


def _read_topic(name: str) -> dict[int, list[tuple[bytes, float]]]:
    """The committed records of a catalog topic with their write times, by partition
    (Kafka settings from the environment, as for the worker)."""
    from confluent_kafka import TopicPartition

    from streams.catalog import Catalog
    from streams.kafka import make_consumer
    from streams.settings import KafkaSettings

    settings = KafkaSettings()
    try:
        topic = Catalog(settings).name(name)
    except KeyError:
        raise click.ClickException(f"{name!r} is not a catalog topic (metrics, logs)") from None
    consumer = make_consumer(settings, f"{settings.topic_prefix}backtest")
    out: dict[int, list[tuple[bytes, float]]] = {}
    try:
        meta = consumer.list_topics(topic, timeout=30).topics.get(topic)
        if meta is None or meta.error is not None:
            raise click.ClickException(f"topic {topic!r} not found")
        for p in sorted(meta.partitions):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)
            records = out[p] = []
            if high <= low:
                continue
            consumer.assign([TopicPartition(topic, p, low)])
            position = low
            while position < high:
                batch = consumer.consume(5000, timeout=1.0)
                records += [
                    (m.value() or b"", m.timestamp()[1] / 1000) for m in batch if not m.error()
                ]
                position = consumer.position([TopicPartition(topic, p)])[0].offset
                if not batch and position < high:
                    # only transaction markers left (they occupy offsets too)
                    break
            consumer.unassign()
    finally:
        consumer.close()
    return out

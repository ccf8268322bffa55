"""Run rules over a recorded stream: the transitions they would have produced.

The input is NDJSON lines of MetricSample / LogRecord (a file, or the committed
records of a topic, one engine per partition as the worker has), optionally cut to an
event-time range. It goes through the worker's own decode-and-fold code.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import orjson

from processors.rules.engine import RuleEngine
from schemas import Alert
from schemas.rules import RuleFile
from streams.processor.feed import IS_LATE, OK, Verdict, feed_log, feed_metric

_NO_SKEW_LIMIT = timedelta(days=365 * 100)

Line = bytes | tuple[bytes, float]
"""A record, or a record and the wall-clock time (epoch s) it was written to Kafka."""


@dataclass
class RuleSummary:
    fired: int = 0
    firing_seconds: float = 0.0
    open_since: dict[str, float] = field(default_factory=dict)


@dataclass
class BacktestResult:
    transitions: list[Alert]
    summary: dict[str, RuleSummary]
    records: int
    invalid: list[tuple[int, str]]
    late: int
    skipped: int = 0  # outside the requested time range


@dataclass(frozen=True)
class TimeRange:
    """Event time [since, until); either end open."""

    since: datetime | None = None
    until: datetime | None = None

    def __contains__(self, at: datetime) -> bool:
        return (self.since is None or at >= self.since) and (self.until is None or at < self.until)


def backtest(
    pack: RuleFile, lines: Iterable[Line], window: TimeRange | None = None
) -> BacktestResult:
    """One engine over the lines, in order (a file is one partition).

    With a write time per record (records read from Kafka), `max_future_skew` is
    applied against it, as the worker applied it against its clock when it consumed
    the record; a bare file has no clock, so nothing is refused as being in the future.
    """
    engine = RuleEngine(pack.rules, pack.settings)
    transitions: list[Alert] = []
    invalid: list[tuple[int, str]] = []
    late = records = skipped = 0
    skew = pack.settings.max_future_skew
    for lineno, line in enumerate(lines, start=1):
        raw, now = (line, None) if isinstance(line, bytes) else line
        raw = raw.strip()
        if not raw:
            continue
        records += 1
        verdict = _feed(engine, raw, window, now, skew)
        if verdict is None:
            skipped += 1
        elif verdict.outcome == IS_LATE:
            late += 1
        elif verdict.outcome != OK:
            invalid.append((lineno, verdict.error))
        if records % 1000 == 0:
            transitions += engine.advance()
    transitions += engine.advance()
    transitions += engine.flush()
    return BacktestResult(
        transitions, summarise(pack, transitions), records, invalid, late, skipped
    )


def backtest_partitions(
    pack: RuleFile, partitions: Mapping[int, Iterable[Line]], window: TimeRange | None = None
) -> BacktestResult:
    """One engine per recorded partition, as the worker runs them; transitions merged in
    event-time order. Invalid line numbers are per partition offsets from its start."""
    results = [backtest(pack, lines, window) for _, lines in sorted(partitions.items())]
    transitions = sorted(
        (a for r in results for a in r.transitions),
        key=lambda a: (a.produced_at, a.rule, a.fingerprint),
    )
    return BacktestResult(
        transitions,
        summarise(pack, transitions),
        sum(r.records for r in results),
        [bad for r in results for bad in r.invalid],
        sum(r.late for r in results),
        sum(r.skipped for r in results),
    )


def _feed(
    engine: RuleEngine,
    raw: bytes,
    window: TimeRange | None,
    now: float | None,
    skew: timedelta,
) -> Verdict | None:
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return Verdict("invalid", "invalid_json", f"not JSON: {exc}")
    if window is not None and isinstance(doc, dict):
        at = _event_time(doc)
        if at is not None and at not in window:
            return None
    is_metric = isinstance(doc, dict) and "name" in doc and "value" in doc
    feed = feed_metric if is_metric else feed_log
    if now is None:
        return feed(engine, raw, float("inf"), _NO_SKEW_LIMIT)
    return feed(engine, raw, now, skew)


def _event_time(doc: dict[str, object]) -> datetime | None:
    """The record's time, if readable; otherwise validation will say what is wrong."""
    value = doc.get("time")
    if not isinstance(value, str):
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        return None
    return at if at.tzinfo is not None else None


def summarise(pack: RuleFile, transitions: list[Alert]) -> dict[str, RuleSummary]:
    out = {r.name: RuleSummary() for r in pack.rules}
    for a in transitions:
        s = out[a.rule]
        if a.status == "firing":
            s.fired += 1
            s.open_since[a.fingerprint] = a.starts_at.timestamp()
        elif a.status == "resolved" and a.fingerprint in s.open_since and a.ends_at:
            s.firing_seconds += a.ends_at.timestamp() - s.open_since.pop(a.fingerprint)
    return out

"""Run rules over a recorded stream: the transitions they would have produced."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta

import orjson

from processors.rules import RuleEngine
from schemas import Alert
from schemas.rules import RuleFile
from streams.processor.feed import IS_LATE, OK, Verdict, feed_log, feed_metric

_NO_SKEW_LIMIT = timedelta(days=365 * 100)


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


def backtest(pack: RuleFile, lines: Iterable[bytes]) -> BacktestResult:
    engine = RuleEngine(pack.rules, pack.settings)
    transitions: list[Alert] = []
    invalid: list[tuple[int, str]] = []
    late = records = 0
    for lineno, raw in enumerate(lines, start=1):
        raw = raw.strip()
        if not raw:
            continue
        records += 1
        verdict = _feed(engine, raw)
        if verdict.outcome == IS_LATE:
            late += 1
        elif verdict.outcome != OK:
            invalid.append((lineno, verdict.error))
        if records % 1000 == 0:
            transitions += engine.advance()
    transitions += engine.advance()
    transitions += engine.flush()
    return BacktestResult(transitions, summarise(pack, transitions), records, invalid, late)


def _feed(engine: RuleEngine, raw: bytes) -> Verdict:
    try:
        kind = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return Verdict("invalid", "invalid_json", f"not JSON: {exc}")
    is_metric = isinstance(kind, dict) and "name" in kind and "value" in kind
    feed = feed_metric if is_metric else feed_log
    return feed(engine, raw, float("inf"), _NO_SKEW_LIMIT)


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

"""Signal selection, window bounds, counters, time zones and the rule-file errors a user
meets: each on a hand-built stream."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from processors.rules.engine import RuleEngine
from schemas import ConfigError
from schemas.rules import Rule, RuleSettings, load_rule_files
from streams.cli.main import cli
from streams.processor.feed import feed_metric

T0 = datetime(2026, 10, 25, 0, 0, tzinfo=UTC).timestamp()  # a DST change day in Europe
NO_GRACE = RuleSettings(allowed_lateness=timedelta(0))
PACK = load_rule_files([Path("rules/default.yaml")])


def _rule(**kw: Any) -> Rule:
    base: dict[str, Any] = {
        "name": "lat",
        "signal": {"kind": "metric", "metric": "latency_ms"},
        "aggregation": "max",
        "window": {"size": "1m"},
        "condition": {"op": ">", "threshold": 100},
        "group_by": ["host"],
    }
    base.update(kw)
    return Rule.model_validate(base)


def _fired_hosts(rule: Rule, hosts: list[dict[str, str]]) -> list[str]:
    e = RuleEngine([rule], NO_GRACE)
    for labels in hosts:
        e.process_metric("latency_ms", labels, 500.0, T0)
    e.process_metric("latency_ms", {"host": "clock"}, 0.0, T0 + 60)
    return [a.labels["host"] for a in e.advance() if a.status == "firing"]


HOSTS = [
    {"host": "web-1", "dc": "eu-1"},
    {"host": "web-2", "dc": "us-1"},
    {"host": "db-1", "dc": "eu-1"},
    {"host": "db-2"},  # no dc label at all
]


@pytest.mark.parametrize(
    ("matcher", "expected"),
    [
        ({"label": "dc", "op": "=", "value": "eu-1"}, ["db-1", "web-1"]),
        ({"label": "dc", "op": "!=", "value": "eu-1"}, ["db-2", "web-2"]),
        ({"label": "host", "op": "=~", "value": "web-.*"}, ["web-1", "web-2"]),
        # anchored, as in Prometheus: "web" alone does not match "web-1"
        ({"label": "host", "op": "=~", "value": "web"}, []),
        ({"label": "host", "op": "!~", "value": "web-.*|clock"}, ["db-1", "db-2"]),
        # a missing label matches as the empty string
        ({"label": "dc", "op": "=", "value": ""}, ["db-2"]),
    ],
)
def test_label_matchers(matcher: dict[str, str], expected: list[str]) -> None:
    r = _rule(signal={"kind": "metric", "metric": "latency_ms", "matchers": [matcher]})
    assert sorted(_fired_hosts(r, HOSTS)) == expected


def test_tumbling_and_sliding_windows_report_their_bounds() -> None:
    tumbling = _rule(name="tumbling")
    sliding = _rule(name="sliding", window={"size": "1m", "step": "20s"})
    e = RuleEngine([tumbling, sliding], NO_GRACE)
    e.process_metric("latency_ms", {"host": "h"}, 500.0, T0 + 45)
    e.process_metric("latency_ms", {"host": "h"}, 1.0, T0 + 200)
    firing = {a.rule: a for a in e.advance() if a.status == "firing"}
    assert firing["tumbling"].window_start.timestamp() == T0  # type: ignore[union-attr]
    assert firing["tumbling"].window_end.timestamp() == T0 + 60  # type: ignore[union-attr]
    # 1m windows on a 20 s grid holding t=45 s: [0, 60), [20, 80), [40, 100); the first to
    # close, [0, 60), is the one that fires
    assert firing["sliding"].window_start.timestamp() == T0  # type: ignore[union-attr]
    assert firing["sliding"].window_end.timestamp() == T0 + 60  # type: ignore[union-attr]


def test_sliding_window_keeps_firing_while_the_spike_is_inside() -> None:
    sliding = _rule(name="sliding", window={"size": "1m", "step": "20s"})
    e = RuleEngine([sliding], NO_GRACE)
    e.process_metric("latency_ms", {"host": "h"}, 500.0, T0 + 45)
    for t in range(50, 200, 5):
        e.process_metric("latency_ms", {"host": "h"}, 1.0, T0 + t)
    out = e.advance()
    # firing at the end of [0, 60); resolved at the end of the first window without it
    assert [(a.status, a.window_end.timestamp() - T0) for a in out] == [  # type: ignore[union-attr]
        ("firing", 60.0),
        ("resolved", 120.0),
    ]


def test_out_of_order_counter_samples_do_not_inflate_the_rate() -> None:
    r = _rule(
        name="reqs",
        signal={"kind": "metric", "metric": "requests_total", "counter": True},
        aggregation="rate",
        condition={"op": ">", "threshold": 9},
        group_by=[],
    )
    e = RuleEngine([r], RuleSettings(allowed_lateness=timedelta(seconds=30)))
    # +5/s; the sample of t=20 arrives after the one of t=30
    for t, v in [(0, 0), (10, 50), (30, 150), (20, 100), (40, 200), (50, 250)]:
        assert e.process_metric("requests_total", {}, float(v), T0 + t) is None
    e.process_metric("requests_total", {}, 600.0, T0 + 200)
    assert [a for a in e.advance() if a.window_end.timestamp() == T0 + 60] == []  # type: ignore[union-attr]
    assert e.dump()  # and the state is still sane


def test_timestamps_with_any_offset_land_in_the_same_utc_windows() -> None:
    r = _rule(window={"size": "1h"}, condition={"op": ">", "threshold": 100})
    doc = {"name": "latency_ms", "value": 500.0, "labels": {"host": "h"}}
    utc = datetime.fromtimestamp(T0 + 3599, UTC)  # the last second of the first hour
    shifted = [utc.astimezone(timezone(timedelta(hours=h))) for h in (2, 1, -5, 0)]
    e = RuleEngine([r], NO_GRACE)
    for at in shifted:
        raw = orjson.dumps({**doc, "time": at.isoformat()})
        feed_metric(e, raw, T0 + 10_000, timedelta(minutes=5))
    next_hour = datetime.fromtimestamp(T0 + 3600, UTC).isoformat()
    raw = orjson.dumps({**doc, "value": 1.0, "time": next_hour})
    feed_metric(e, raw, T0 + 10_000, timedelta(minutes=5))
    out = e.advance()
    assert [a.status for a in out] == ["firing"]
    assert out[0].window_start == datetime.fromtimestamp(T0, UTC)


def test_min_samples_keeps_a_thin_window_quiet() -> None:
    errors = next(r for r in PACK.rules if r.name == "http_5xx_error_rate")
    e = RuleEngine([errors], NO_GRACE)
    for i in range(30):  # 30 requests, 10 of them 5xx: 33%, but too few to judge
        e.process_log({"service": "api"}, 500 if i % 3 == 0 else 200, 10.0, T0 + i)
    e.process_log({"service": "api"}, 200, 10.0, T0 + 300)
    assert e.advance() == []


def test_default_pack_4xx_rate_is_a_warning() -> None:
    rule = next(r for r in PACK.rules if r.name == "http_4xx_error_rate")
    e = RuleEngine([rule], NO_GRACE)
    for i in range(400):  # 8% 404s over 40 s
        e.process_log({"service": "shop"}, 404 if i % 25 < 2 else 200, 10.0, T0 + i / 10)
    e.process_log({"service": "shop"}, 200, 10.0, T0 + 300)
    out = [a for a in e.advance() if a.status == "firing"]
    assert len(out) == 1
    assert out[0].severity == "warning"
    assert out[0].value == pytest.approx(0.08)
    assert out[0].summary == "4xx rate 8.0% on shop (> 5% in 1m)"


def test_a_changed_rule_does_not_inherit_the_old_rules_state() -> None:
    old = _rule(condition={"op": ">", "threshold": 100, "for": "10m"})
    e = RuleEngine([old], NO_GRACE)
    for t in range(0, 300, 10):
        e.process_metric("latency_ms", {"host": "h"}, 500.0, T0 + t)
    assert [a.status for a in e.advance()] == ["pending"]
    new = _rule(condition={"op": ">", "threshold": 1000, "for": "10m"})
    restored = RuleEngine([new], NO_GRACE)
    restored.load(e.dump())
    assert restored.series_count() == 0
    same = RuleEngine([old], NO_GRACE)
    same.load(e.dump())
    assert same.series_count() == 1


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "rules:\n  - {name: a, signal: {kind: metric, metric: m}, aggregation: avg,\n"
            "     condition: {threshold: 1}}\n",
            "rule a: window: required for aggregation 'avg'",
        ),
        (
            "rules:\n  - name: b\n    signal:\n      kind: metric\n      metric: m\n"
            "      matchers: [{label: x, op: '=~', value: '('}]\n"
            "    window: {size: 1m}\n    condition: {threshold: 1}\n",
            "rule b: matchers: invalid regex '('",
        ),
        (
            "rules:\n  - {name: c, signal: {kind: metric, metric: m}, window: {size: 1m},\n"
            "     condition: {threshold: 1, for: 5 minutes}}\n",
            "rule c field condition.for",
        ),
        ("rules: [\n", "cannot read YAML"),
    ],
)
def test_rule_errors_name_the_file_the_rule_and_the_field(
    tmp_path: Path, body: str, message: str
) -> None:
    f = tmp_path / "team.yaml"
    f.write_text(body)
    with pytest.raises(ConfigError) as err:
        load_rule_files([f])
    assert str(err.value).startswith(str(f))
    assert message in str(err.value)
    result = CliRunner().invoke(cli, ["rules", "check", str(f)])
    assert result.exit_code == 1


def test_rule_names_must_be_unique_across_files(tmp_path: Path) -> None:
    rule = (
        "rules:\n  - {name: dup, signal: {kind: metric, metric: m}, aggregation: absent,\n"
        "     absent_for: 5m}\n"
    )
    (tmp_path / "a.yaml").write_text(rule)
    (tmp_path / "b.yaml").write_text(rule)
    with pytest.raises(ConfigError, match="duplicate rule name 'dup'"):
        load_rule_files([tmp_path])


def test_backtest_cli_prints_transitions_and_a_summary(tmp_path: Path) -> None:
    lines = []
    for i in range(40):
        at = datetime.fromtimestamp(T0 + 10 * i, UTC).isoformat()
        value = 99.0 if i < 35 else 10.0
        lines.append(orjson.dumps({"name": "memory_percent", "value": value, "time": at,
                                   "labels": {"host": "db-1", "service": "db"}}))  # fmt: skip
    data = tmp_path / "recorded.ndjson"
    data.write_bytes(b"\n".join(lines) + b"\n")
    result = CliRunner().invoke(
        cli, ["backtest", "--rules", "rules/default.yaml", "--input", str(data)]
    )
    assert result.exit_code == 0, result.output
    assert "pending  memory_high host=db-1,service=db value=99" in result.output
    assert "firing   memory_high" in result.output
    assert "40 records" in result.output
    summary = result.output.split("firing for")[1]
    assert "memory_high" in summary and "cpu_saturation_critical" in summary


def test_backtest_time_range_cuts_the_input(tmp_path: Path) -> None:
    lines = []
    for i in range(90):  # 15 minutes of 99% memory
        at = datetime.fromtimestamp(T0 + 10 * i, UTC).isoformat()
        lines.append(orjson.dumps({"name": "memory_percent", "value": 99.0, "time": at,
                                   "labels": {"host": "db-1", "service": "db"}}))  # fmt: skip
    data = tmp_path / "recorded.ndjson"
    data.write_bytes(b"\n".join(lines) + b"\n")
    args = ["backtest", "--rules", "rules/default.yaml", "--input", str(data), "--quiet"]
    whole = CliRunner().invoke(cli, args)
    assert "memory_high                           1" in whole.output
    # the first 4 minutes only: pending, never 5 minutes above 90%, so never firing
    until = datetime.fromtimestamp(T0 + 240, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    cut = CliRunner().invoke(cli, [*args, "--until", until])
    assert cut.exit_code == 0, cut.output
    assert "90 records" in cut.output
    assert "66 outside the time range" in cut.output
    assert "memory_high                           0" in cut.output
    both = CliRunner().invoke(cli, ["backtest", "--rules", "rules/default.yaml"])
    assert both.exit_code != 0 and "exactly one of --input FILE or --topic NAME" in both.output

"""Any rule that validates runs (hypothesis): generated rule files, fed generated samples
with and without record keys and across a checkpoint, never raise, and the record keys
and the checkpoint change no answer. A rule that loads but cannot run is a worker that
crash-loops on its first sample (as an anomaly rule on a counter once did)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from processors.rules.engine import RuleEngine
from schemas import encode
from schemas.rules import Rule, RuleSettings

T0 = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
SETTINGS = [
    RuleSettings(allowed_lateness=timedelta(seconds=10)),
    RuleSettings(allowed_lateness=timedelta(0), watermark="partition"),
]
AGGREGATIONS = ["avg", "min", "max", "sum", "count", "rate", "ratio", "quantile", "last", "absent"]
ANOMALY = {"season": "none", "warm_up": 2, "debounce_k": 1, "debounce_n": 2, "resolve_after": 2}


@st.composite
def rule_docs(draw: st.DrawFn, index: int) -> dict[str, Any]:
    """A rule as a user might write one: mostly the fields its kind needs, and now and
    then one more field given any value of its kind (a combination the schema may or
    may not accept)."""
    doc: dict[str, Any] = {"name": f"r{index}"}
    logs = draw(st.booleans()) and draw(st.booleans())
    if logs:
        doc["signal"] = {"kind": "log", "value": draw(st.sampled_from(["count", "duration_ms"]))}
    else:
        doc["signal"] = {"kind": "metric", "metric": draw(st.sampled_from(["m", "c"])),
                         "counter": draw(st.booleans())}  # fmt: skip
    size = draw(st.sampled_from([10, 20, 60]))
    step = draw(st.sampled_from([None, size, size // 2]))
    window = {"size": f"{size}s", **({"step": f"{step}s"} if step else {})}
    aggregation = draw(st.sampled_from(AGGREGATIONS))
    kind = draw(st.sampled_from(["condition", "anomaly", "absent"]))
    if kind == "condition":
        op = draw(st.sampled_from([">", "<"]))
        threshold = draw(st.sampled_from([0.5, 5.0, 50.0]))
        condition: dict[str, Any] = {
            "op": op,
            "threshold": threshold,
            "for": draw(st.sampled_from(["0s", "20s"])),
            "keep_firing_for": draw(st.sampled_from(["0s", "15s"])),
        }
        if draw(st.booleans()):
            condition["resolve_threshold"] = threshold * (0.5 if op == ">" else 2.0)
        doc |= {"aggregation": aggregation, "window": window, "condition": condition}
        doc["early"] = draw(st.booleans())
    elif kind == "anomaly":
        doc["anomaly"] = ANOMALY
        if draw(st.booleans()):
            doc |= {"aggregation": aggregation, "window": window}
    else:
        doc |= {"aggregation": "absent", "absent_for": "30s"}
    if aggregation == "quantile":
        doc["quantile"] = 0.9
    if aggregation == "ratio":
        doc["numerator"] = {"status_class": ["5xx"]}
    if draw(st.integers(min_value=0, max_value=4)) == 0:  # one more field, any value
        extra = draw(st.sampled_from([
            ("window", window), ("early", True), ("absent_for", "30s"), ("quantile", 0.5),
            ("aggregation", aggregation), ("numerator", {"status_class": ["4xx"]}),
            ("condition", {"op": ">", "threshold": 1.0}), ("anomaly", ANOMALY),
        ]))  # fmt: skip
        doc[extra[0]] = extra[1]
    if draw(st.booleans()):
        zone = {"label": "zone", "op": draw(st.sampled_from(["=", "!="])), "value": "x"}
        doc["signal"]["matchers"] = [zone]
    doc["min_samples"] = draw(st.sampled_from([1, 2]))
    doc["group_by"] = draw(st.sampled_from([[], ["host"], ["host", "zone"]]))
    doc["max_series"] = draw(st.sampled_from([1, 10]))
    return doc


@st.composite
def rule_sets(draw: st.DrawFn) -> list[Rule]:
    rules = []
    for i in range(draw(st.integers(min_value=1, max_value=4))):
        try:
            rules.append(Rule.model_validate(draw(rule_docs(i))))
        except ValidationError:
            continue  # refused at load, naming the field: never reaches a worker
    return rules


events = st.lists(
    st.tuples(
        st.sampled_from(["m", "c", "log"]),
        st.sampled_from(["a", "b"]),  # host
        st.sampled_from(["x", "y"]),  # zone
        st.integers(min_value=0, max_value=60).map(float),
        st.sampled_from([0, 1, 5, 13, 400]),  # seconds since the previous event
        st.sampled_from([200, 503]),
        st.sampled_from(["default", "default", "acme"]),  # tenant
    ),
    min_size=1,
    max_size=80,
)


def _run(
    rules: list[Rule], rs: RuleSettings, stream: list[Any], keyed: bool, cut: int | None
) -> list[bytes]:
    e = RuleEngine(rules, rs)
    out: list[bytes] = []
    t = T0
    for i, (kind, host, zone, v, dt, status, tenant) in enumerate(stream):
        t += dt
        labels = {"host": host, "zone": zone}
        route = f"{tenant}/{kind}/{host}/{zone}".encode() if keyed else None
        if kind == "log":
            e.process_log(labels, status, v, t, route=route, tenant=tenant)
        else:
            value = v if kind == "m" else float(int(v) * (i % 7))  # a counter, with resets
            e.process_metric(kind, labels, value, t, route=route, tenant=tenant)
        e.overflows.clear()
        out += [encode(a) for a in e.advance()]
        if i == cut:
            restored = RuleEngine(rules, rs)
            restored.load(e.dump())
            e = restored
    return out + [encode(a) for a in e.flush()]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rule_sets(), st.sampled_from(SETTINGS), events, st.integers(min_value=0, max_value=80))
def test_every_rule_that_loads_runs_and_keys_and_checkpoints_change_nothing(
    rules: list[Rule], rs: RuleSettings, stream: list[Any], cut: int
) -> None:
    plain = _run(rules, rs, stream, keyed=False, cut=None)
    assert _run(rules, rs, stream, keyed=True, cut=None) == plain
    assert _run(rules, rs, stream, keyed=True, cut=cut) == plain

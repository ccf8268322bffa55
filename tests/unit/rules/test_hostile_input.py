"""Whatever the schema accepts, the default pack digests: no exception in the engine,
every transition a valid Alert, and the state round-trips through a checkpoint. A worker
that raised here would stop, and its replay would meet the same record again."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from processors.rules.engine import RuleEngine
from schemas import Alert, decode, encode
from schemas.rules import load_rule_files
from schemas.types import MAX_MAGNITUDE
from streams.processor.feed import INVALID, feed_log, feed_metric

PACK = load_rule_files([Path("rules/default.yaml")])
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
SKEW = timedelta(minutes=5)
METRICS = ["cpu_percent", "memory_percent", "disk_iowait_ms", "network_latency_ms",
           "http_requests_per_second", "api_latency_ms"]  # fmt: skip

values = st.one_of(
    st.floats(-MAX_MAGNITUDE, MAX_MAGNITUDE, allow_nan=False),
    st.sampled_from([0.0, -0.0, 5e-324, 85.0, 90.0, MAX_MAGNITUDE, -MAX_MAGNITUDE]),
)
labels = st.fixed_dictionaries(
    {"host": st.sampled_from(["a", "b"]), "service": st.sampled_from(["api", "web"])},
    optional={"scope": st.sampled_from(["intra-dc", "regional", "global"])},
)
offsets = st.floats(-600, 4000, allow_nan=False)  # seconds from T0: late, out of order, gaps


def _iso(epoch: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch, UTC).isoformat()


metric = st.builds(
    lambda name, value, at, lab, kind: {
        "name": name,
        "value": value,
        "time": _iso(T0 + at),
        "labels": lab,
        "kind": kind,
    },
    st.sampled_from(METRICS),
    values,
    offsets,
    labels,
    st.sampled_from(["gauge", "counter"]),
)
log = st.builds(
    lambda status, duration, at, lab: {
        "time": _iso(T0 + at),
        "http_status": status,
        "duration_ms": duration,
        "labels": lab,
    },
    st.one_of(st.none(), st.integers(100, 599)),
    st.one_of(st.none(), st.floats(0, MAX_MAGNITUDE, allow_nan=False)),
    offsets,
    labels,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.booleans(), metric, log), min_size=1, max_size=120))
def test_the_default_pack_digests_anything_the_schema_accepts(
    records: list[tuple[bool, dict[str, Any], dict[str, Any]]],
) -> None:
    engine = RuleEngine(PACK.rules, PACK.settings)
    out: list[Alert] = []
    for i, (is_metric, m, lg) in enumerate(records):
        feed = feed_metric if is_metric else feed_log
        verdict = feed(engine, orjson.dumps(m if is_metric else lg), T0 + 4000, SKEW)
        assert verdict.outcome != INVALID, verdict.error  # the strategies stay inside the schema
        if i % 10 == 9:
            out += engine.advance()
    out += engine.advance()
    for alert in out:
        assert decode(Alert, encode(alert)) == alert
    restored = RuleEngine(PACK.rules, PACK.settings)
    restored.load(engine.dump())
    assert restored.dump() == engine.dump()

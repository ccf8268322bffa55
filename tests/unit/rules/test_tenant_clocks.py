"""Event time per tenant: the tenants sharing a partition each have their own clock.

What a user would notice: one tenant's samples (ahead by up to the allowed future skew,
or simply more of them) never make another tenant's samples late, never close its
windows early and never fill a shared rule's series cap for it. The strongest form:
whatever the interleaving of the tenants' samples and the batch boundaries, each
tenant gets exactly the transitions and late records it gets when its samples alone
are fed to an engine of its own.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from processors.rules.engine import LATE, RuleEngine
from processors.rules.snapshot import IncompatibleState
from schemas import Alert, encode
from schemas.rules import Rule, RuleSettings
from streams.processor.feed import OVERFLOW, feed_metrics
from tests.unit.rules.test_tenants import RULES as PACK
from tests.unit.rules.test_tenants import rule

T0 = datetime(2026, 3, 2, tzinfo=UTC).timestamp()
SKEW_S = 300.0
TENANTS = ("default", "acme", "beta")


# the tenants' property pack, plus a log rule: every signal kind keeps its tenant's clock
RULES = [
    *PACK,
    Rule.model_validate(
        {
            "name": "errors",
            "signal": {"kind": "log", "filter": {"status_class": ["5xx"]}},
            "aggregation": "count",
            "window": {"size": "30s"},
            "condition": {"op": ">=", "threshold": 3},
            "group_by": ["service"],
        }
    ),
]

# (host or "log", value, seconds since the tenant's previous sample: negative is a
# sample out of order, by up to the grace)
_step = st.tuples(
    st.sampled_from(["a", "b", "log"]),
    st.integers(min_value=0, max_value=100).map(float),
    st.integers(min_value=-25, max_value=4),
)
# each tenant's own stream, short enough that no tenant falls idle whatever the order
_tenant_stream = st.lists(_step, min_size=0, max_size=50)

Sample = tuple[str, str, float, float]  # tenant, host, value, t


def _timeline(tenant: str, steps: list[tuple[str, float, int]], ahead: float) -> list[Sample]:
    t, out = T0 + ahead, []
    for host, v, dt in steps:
        t += dt
        out.append((tenant, host, v, t))
    return out


def _feed(e: RuleEngine, s: Sample, routed: bool) -> str | None:
    tenant, host, v, t = s
    if host == "log":
        status = 500 if v > 40 else 200
        return e.process_log({"service": "api"}, status, None, t, b"l" if routed else None, tenant)
    return e.process_metric("memory_percent", {"host": host}, v, t, "",
                            b"k" + host.encode() if routed else None, tenant)  # fmt: skip


def _run(
    stream: list[Sample],
    rs: RuleSettings,
    cuts: set[int],
    routed: bool = False,
    checkpoint_at: int | None = None,
) -> tuple[list[Alert], list[Sample]]:
    """The transitions (every advance, then a flush) and the samples refused as late."""
    e = RuleEngine(RULES, rs)
    out: list[Alert] = []
    late: list[Sample] = []
    for i, s in enumerate(stream):
        if i == checkpoint_at:
            # as the worker does: the transitions out first, then the checkpoint
            out += e.advance()
            restored = RuleEngine(RULES, rs)
            restored.load(e.dump())
            e = restored
        if _feed(e, s, routed) == LATE:
            late.append(s)
        if i in cuts:
            out += e.advance()
    return out + e.advance() + e.flush(), late


def _per_tenant(alerts: list[Alert], late: list[Sample], tenant: str) -> tuple[Any, Any]:
    """A tenant's transitions in the order of the event time they were decided at (each
    advance emits in that order; one advance or several may hold a transition that an
    out-of-order sample decides at an earlier time, whether one tenant or many feed the
    engine), and its late samples in arrival order."""
    mine = [a for a in alerts if a.tenant == tenant]
    ordered = sorted(mine, key=lambda a: (a.produced_at, a.rule))  # stable: ties as emitted
    return [encode(a) for a in ordered], [s for s in late if s[0] == tenant]


def _settings(mode: str) -> RuleSettings:
    return RuleSettings(
        allowed_lateness=timedelta(seconds=30),
        max_future_skew=timedelta(seconds=SKEW_S),
        watermark=mode,  # type: ignore[arg-type]
    )


@settings(max_examples=80, deadline=None)
@given(
    st.tuples(_tenant_stream, _tenant_stream, _tenant_stream),
    st.tuples(*(st.sampled_from([0.0, 7.0, 120.0, SKEW_S]) for _ in TENANTS)),
    st.lists(st.sampled_from(TENANTS), min_size=200, max_size=200),
    st.sets(st.integers(min_value=0, max_value=150)),
    st.sampled_from(["series", "partition"]),
    st.booleans(),
)
def test_each_tenant_gets_exactly_what_its_samples_alone_would_get(
    streams: tuple[list[Any], ...],
    ahead: tuple[float, ...],
    order: list[str],
    cuts: set[int],
    mode: str,
    routed: bool,
) -> None:
    """Interleaved any way (each tenant's own order kept), one tenant up to the future
    skew ahead of the others, batches cut anywhere: per tenant, the same transitions
    and the same late samples as its stream fed alone."""
    rs = _settings(mode)
    own = {
        tenant: _timeline(tenant, steps, lead)
        for tenant, steps, lead in zip(TENANTS, streams, ahead, strict=True)
    }
    # the merge: `order` says whose next sample comes next, the rest follow in turn
    queues = {tenant: list(samples) for tenant, samples in own.items()}
    mixed: list[Sample] = []
    for tenant in order:
        if queues[tenant]:
            mixed.append(queues[tenant].pop(0))
    for tenant in TENANTS:
        mixed += queues[tenant]
    alerts, late = _run(mixed, rs, cuts, routed)
    for tenant in TENANTS:
        alone, alone_late = _run(own[tenant], rs, set())
        assert _per_tenant(alerts, late, tenant) == _per_tenant(alone, alone_late, tenant)


# steps long enough for tenants to fall idle, follow the partition's clock and be
# dropped once they hold nothing
_long_step = st.tuples(
    st.sampled_from(TENANTS),
    st.sampled_from(["a", "b", "log"]),
    st.integers(min_value=0, max_value=100).map(float),
    st.one_of(st.integers(min_value=-25, max_value=5), st.sampled_from([400, 900, 3000])),
)


def _long_timeline(steps: list[tuple[str, str, float, int]]) -> list[Sample]:
    clocks = dict.fromkeys(TENANTS, T0)
    out: list[Sample] = []
    for tenant, host, v, dt in steps:
        clocks[tenant] = max(clocks[tenant] + dt, max(clocks.values()) - 30 * 60)
        out.append((tenant, host, v, clocks[tenant]))
    return out


@settings(max_examples=60, deadline=None)
@given(
    st.lists(_long_step, min_size=1, max_size=150),
    st.sets(st.integers(min_value=0, max_value=150)),
    st.integers(min_value=0, max_value=150),
    st.sampled_from(["series", "partition"]),
)
def test_a_checkpoint_anywhere_and_batch_boundaries_change_no_tenants_transitions(
    steps: list[tuple[str, str, float, int]], cuts: set[int], at: int, mode: str
) -> None:
    """Tenants falling idle, following the partition and being dropped included: a
    restore anywhere continues exactly as the uninterrupted run, and the batch
    boundaries change nothing any tenant gets."""
    rs = _settings(mode)
    stream = _long_timeline(steps)
    every7 = set(range(0, 200, 7))
    whole, whole_late = _run(stream, rs, every7 | {at - 1})
    restored, restored_late = _run(stream, rs, every7, checkpoint_at=at)
    assert [encode(a) for a in restored] == [encode(a) for a in whole]
    assert restored_late == whole_late
    cut, cut_late = _run(stream, rs, cuts)
    for tenant in TENANTS:
        assert _per_tenant(cut, cut_late, tenant) == _per_tenant(whole, whole_late, tenant)


@pytest.mark.parametrize("mode", ["series", "partition"])
def test_a_tenant_running_ahead_makes_nobody_elses_samples_late(mode: str) -> None:
    e = RuleEngine([rule()], _settings(mode))
    out: list[Alert] = []
    # acme's clock is five minutes ahead (within the skew a source may have): on one
    # shared clock beta's samples would all be late and its windows closed before them
    for i in range(12):
        t = T0 + i * 10
        assert e.process_metric("memory_percent", {"host": "db-1"}, 20.0, t + SKEW_S,
                                tenant="acme") is None  # fmt: skip
        assert e.process_metric("memory_percent", {"host": "db-1"}, 95.0, t,
                                tenant="beta") is None  # fmt: skip
        out += e.advance()
    assert [(a.tenant, a.status) for a in out] == [("beta", "firing")]
    # beta's own lateness still applies to beta
    assert e.process_metric("memory_percent", {"host": "db-1"}, 95.0, T0, tenant="beta") == LATE


def test_a_silent_tenant_follows_the_partition_and_is_forgotten_once_it_holds_nothing() -> None:
    e = RuleEngine([rule()], _settings("series"))
    e.process_metric("memory_percent", {"host": "db-1"}, 20.0, T0, tenant="beta")
    for i in range(1, 60 * 6 * 3):  # three hours of acme, every 10 s
        e.process_metric("memory_percent", {"host": "db-1"}, 20.0, T0 + i * 10, tenant="acme")
        e.advance()
        if i == 30:  # five minutes on: beta's clock still stands where beta left it
            assert [x.tenant for x in e.engines()] == ["default", "beta", "acme"]
            assert e.partition.others["beta"].max_time == T0
    # beta's series was evicted after its idle hour: nothing of beta is kept
    assert list(e.partition.others) == ["acme"]
    # and its return starts a clock of its own again
    assert e.process_metric("memory_percent", {"host": "db-1"}, 20.0, T0 + 60,
                            tenant="beta") is None  # fmt: skip
    assert list(e.partition.others) == ["acme", "beta"]


def _record(tenant: str, host: str, at: float) -> Any:
    when = datetime.fromtimestamp(at, UTC).isoformat()
    doc = {"name": "memory_percent", "value": 99.0, "labels": {"host": host}, "time": when,
           "tenant": tenant}  # fmt: skip

    class Rec:
        def value(self) -> bytes:
            return orjson.dumps(doc)

        def key(self) -> bytes:
            return f"memory_percent{host}".encode()

        def timestamp(self) -> tuple[int, float]:
            return (1, at * 1000)

    return Rec()


def test_a_rules_series_cap_is_per_tenant() -> None:
    """A tenant with many series fills the shared rule's cap for itself only."""
    e = RuleEngine([rule(max_series=3)], _settings("series"))
    fired: set[tuple[str, str]] = set()
    refused: list[Any] = []
    for i in range(6):
        t = T0 + i * 10
        recs = [_record("noisy", f"n{h}", t) for h in range(10)]
        recs += [_record("quiet", f"q{h}", t) for h in range(3)]
        refused += [v for _, v in feed_metrics(e, recs, timedelta(seconds=SKEW_S))]
        fired |= {(a.tenant, a.labels["host"]) for a in e.advance() if a.status == "firing"}
    fired |= {(a.tenant, a.labels["host"]) for a in e.flush() if a.status == "firing"}
    # every one of the quiet tenant's series is evaluated, and three of the noisy one's
    assert {h for t, h in fired if t == "quiet"} == {"q0", "q1", "q2"}
    assert {h for t, h in fired if t == "noisy"} == {"n0", "n1", "n2"}
    # the noisy tenant's others are dead letters naming it, every sample of them
    assert len(refused) == 7 * 6
    assert {(v.outcome, v.reason, v.tenant) for v in refused} == {
        (OVERFLOW, "cardinality", "noisy")}  # fmt: skip
    assert "rule mem: tenant 'noisy'" in refused[0].error


def test_a_checkpoint_of_the_engine_before_tenant_clocks_is_rebuilt_not_loaded() -> None:
    e = RuleEngine([rule()], _settings("series"))
    e.process_metric("memory_percent", {"host": "db-1"}, 95.0, T0, tenant="acme")
    doc = orjson.loads(e.dump())
    assert list(doc["tenants"]) == ["acme"]
    # the version before: one clock for every tenant of the partition
    older = orjson.dumps({**doc, "v": doc["v"] - 1})
    with pytest.raises(IncompatibleState):
        RuleEngine([rule()], _settings("series")).load(older)

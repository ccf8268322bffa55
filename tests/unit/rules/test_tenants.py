"""Tenants in the rule engine: each sample is its tenant's, evaluated by the shared rules
and its tenant's own; two tenants' identical series never aggregate together, and
every alert carries the tenant of the samples it was decided on."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from processors.rules.engine import RuleEngine
from schemas import Alert, encode
from schemas.rules import Rule, RuleSettings
from streams.processor.feed import FUTURE, INVALID, OK, feed_metric, feed_metrics

T0 = datetime(2026, 3, 2, tzinfo=UTC).timestamp()
NO_GRACE = RuleSettings(allowed_lateness=timedelta(0))
GRACE = RuleSettings(allowed_lateness=timedelta(seconds=30))
SKEW = timedelta(minutes=5)


def rule(tenant: str | None = None, **kw: Any) -> Rule:
    base: dict[str, Any] = {
        "name": "mem",
        "signal": {"kind": "metric", "metric": "memory_percent"},
        "aggregation": "avg",
        "window": {"size": "30s"},
        "condition": {"op": ">", "threshold": 90},
        "group_by": ["host"],
    }
    base.update(kw)
    r = Rule.model_validate(base)
    # as load_installation marks a tenant's own rules
    return r if tenant is None else r.model_copy(update={"tenant": tenant})


def run(engine: RuleEngine, samples: list[tuple[str, str, float, float]]) -> list[Alert]:
    """(tenant, host, value, t) samples, in order; the alerts of every advance."""
    out: list[Alert] = []
    for tenant, host, v, t in samples:
        engine.process_metric("memory_percent", {"host": host}, v, t, tenant=tenant)
        out += engine.advance()
    return out + engine.flush()


def fired(alerts: list[Alert]) -> list[tuple[str, str, str, float | None]]:
    return [(a.tenant, a.rule, a.labels["host"], a.value) for a in alerts if a.status == "firing"]


def test_identical_series_of_two_tenants_are_two_series_with_their_own_alerts() -> None:
    e = RuleEngine([rule()], NO_GRACE)
    # the same name and labels at the same instants: acme's host is full, beta's is not.
    # Aggregated together they would average 72.5 and nobody would be paged
    samples = [(tenant, "db-1", v, T0 + i * 10) for i in range(9)
               for tenant, v in (("acme", 95.0), ("beta", 50.0))]  # fmt: skip
    out = run(e, samples)
    assert fired(out) == [("acme", "mem", "db-1", 95.0)]
    assert {a.tenant for a in out} == {"acme"}

    both_high = [(t, h, 95.0, at) for t, h, _, at in samples]
    out = run(RuleEngine([rule()], NO_GRACE), both_high)
    assert sorted(fired(out)) == [("acme", "mem", "db-1", 95.0), ("beta", "mem", "db-1", 95.0)]
    acme, beta = (next(a for a in out if a.tenant == t and a.status == "firing")
                  for t in ("acme", "beta"))  # fmt: skip
    # the alerts topic is keyed by fingerprint: one per tenant, and so is the event id
    assert acme.fingerprint != beta.fingerprint
    assert acme.event_id != beta.event_id
    assert acme.labels == beta.labels == {"host": "db-1", "alertname": "mem"}


def test_the_providers_own_alerts_keep_the_fingerprints_they_had_before_tenants() -> None:
    # alerts already open and checkpoints already written name these fingerprints
    out = run(RuleEngine([rule()], NO_GRACE),
              [("default", "db-1", 95.0, T0 + i * 10) for i in range(4)])  # fmt: skip
    (firing,) = [a for a in out if a.status == "firing"]
    assert firing.tenant == "default"
    assert firing.fingerprint == hashlib.sha256(b"mem\x00host=db-1").hexdigest()[:16]
    # a sample with no tenant given is the provider's
    e = RuleEngine([rule()], NO_GRACE)
    for i in range(4):
        e.process_metric("memory_percent", {"host": "db-1"}, 95.0, T0 + i * 10)
    assert [a.fingerprint for a in e.advance() + e.flush()] == [firing.fingerprint]


def test_a_tenants_own_rule_sees_only_its_tenants_samples_and_shared_rules_see_all() -> None:
    shared = rule(name="mem_shared")
    own = rule("acme", name="acme_mem_tight", condition={"op": ">", "threshold": 60})
    e = RuleEngine([shared, own], NO_GRACE)
    samples = [(tenant, "db-1", 70.0 if i < 5 else 95.0, T0 + i * 10) for i in range(12)
               for tenant in ("acme", "beta", "default")]  # fmt: skip
    out = run(e, samples)
    got = sorted({(tenant, name) for tenant, name, _, _ in fired(out)})
    assert got == [("acme", "acme_mem_tight"), ("acme", "mem_shared"),
                   ("beta", "mem_shared"), ("default", "mem_shared")]  # fmt: skip


def test_a_tenants_own_log_rule_and_absent_rule_stay_with_that_tenant() -> None:
    errors = Rule.model_validate({
        "name": "acme_errors", "signal": {"kind": "log", "filter": {"status_class": ["5xx"]}},
        "aggregation": "count", "window": {"size": "30s"},
        "condition": {"op": ">=", "threshold": 3}, "group_by": ["service"],
    }).model_copy(update={"tenant": "acme"})  # fmt: skip
    silent = rule(name="silent", aggregation="absent", absent_for="1m", window=None,
                  condition=None)  # fmt: skip
    e = RuleEngine([errors, silent], NO_GRACE)
    out: list[Alert] = []
    for i in range(6):
        t = T0 + i * 5
        for tenant in ("acme", "beta"):
            e.process_log({"service": "api"}, 500, None, t, tenant=tenant)
        out += e.advance()
    # beta's host stops reporting, acme's carries on: beta's clock stands still (acme's
    # samples are not beta's time) until beta has sent nothing while the partition moved
    # on by max_future_skew + tenancy.IDLE_S; then it follows the partition's
    for i in range(70):
        t = T0 + 30 + i * 10
        e.process_metric("memory_percent", {"host": "db-1"}, 1.0, t, tenant="acme")
        if i < 2:
            e.process_metric("memory_percent", {"host": "db-1"}, 1.0, t, tenant="beta")
        out += e.advance()
        if t < T0 + 40 + 600:
            assert not [a for a in out if a.tenant == "beta"]
    assert sorted({(a.tenant, a.rule) for a in out if a.status == "firing"}) == [
        ("acme", "acme_errors"), ("beta", "silent")]  # fmt: skip
    # declared absent when its own clock would have: a minute after its last sample
    (silent_beta,) = [a for a in out if a.tenant == "beta"]
    assert silent_beta.starts_at.timestamp() == T0 + 40 + 60


def test_rules_with_shared_accumulators_still_keep_tenants_apart() -> None:
    # the same signal, aggregation, window and grouping: the later rules share the first
    # one's pane accumulators on the hot path (routes.ShadowSlot) where both see a sample
    rules = [rule(name="a"), rule("acme", name="acme_b"), rule("beta", name="beta_c")]
    e = RuleEngine(rules, NO_GRACE)
    keys = iter([b"k"] * 1000)
    out: list[Alert] = []
    for i in range(12):
        for tenant, v in (("acme", 95.0), ("beta", 10.0)):
            e.process_metric("memory_percent", {"host": "db-1"}, v, T0 + i * 10, "",
                             next(keys), tenant)  # fmt: skip
        out += e.advance()
    assert sorted({(t, r) for t, r, _, _ in fired(out)}) == [("acme", "a"), ("acme", "acme_b")]


def _record(tenant: str | None, value: float, at: float, **extra: Any) -> bytes:
    when = datetime.fromtimestamp(at, UTC).isoformat()
    doc: dict[str, Any] = {"name": "memory_percent", "value": value, "labels": {"host": "db-1"},
                           "time": when, **extra}  # fmt: skip
    if tenant is not None:
        doc["tenant"] = tenant
    return orjson.dumps(doc)


class _Rec:
    def __init__(self, raw: bytes, key: bytes) -> None:
        self.raw, self._key = raw, key

    def value(self) -> bytes:
        return self.raw

    def key(self) -> bytes:
        return self._key

    def timestamp(self) -> tuple[int, float]:
        return (1, (T0 + 3600) * 1000)


def test_the_feed_takes_the_tenant_from_the_envelope_through_the_route_cache() -> None:
    # two tenants' identical series share their Kafka key (the series key): each keeps
    # its own route and its own series, batch after batch
    e = RuleEngine([rule()], NO_GRACE)
    key = b"memory_percent{host=db-1}"
    out: list[Alert] = []
    for i in range(12):
        batch = [_Rec(_record(t, v, T0 + i * 10), key)
                 for t, v in (("acme", 10.0), (None, 95.0), ("beta", 96.0))]  # fmt: skip
        assert feed_metrics(e, batch, SKEW) == []
        out += e.advance()
    assert sorted(fired(out)) == [("beta", "mem", "db-1", 96.0), ("default", "mem", "db-1", 95.0)]
    # one route per tenant, each in its tenant's engine: nobody rebuilt per sample
    assert [(x.tenant, list(x._routes)) for x in e.engines()] == [
        (tenant, [key]) for tenant in ("default", "acme", "beta")]  # fmt: skip


def test_dead_letters_name_the_tenant_of_the_record() -> None:
    e = RuleEngine([rule(max_series=1)], NO_GRACE)
    ahead = feed_metric(e, _record("acme", 1.0, T0 + 3600 * 2), T0, SKEW)
    assert (ahead.outcome, ahead.tenant) == (FUTURE, "acme")
    # a record that does not decode: the tenant it names, if it is a tenant id
    bad = feed_metric(e, _record("acme", 1.0, T0, kind="histogram"), T0, SKEW)
    assert (bad.outcome, bad.tenant) == (INVALID, "acme")
    worse = feed_metric(e, b'{"tenant": "Not A Tenant", "value": 1}', T0, SKEW)
    assert (worse.outcome, worse.tenant) == (INVALID, "default")
    # the rule's series cap is per tenant: acme's series is the one group the rule may
    # hold of acme's, so acme's second is refused and beta's first is not
    assert feed_metric(e, _record("acme", 1.0, T0), T0, SKEW).outcome == OK
    db2 = {"labels": {"host": "db-2"}}
    rejected = feed_metrics(e, [_Rec(_record("beta", 1.0, T0), b"k"),
                                _Rec(_record("acme", 1.0, T0, **db2), b"k2")], SKEW)  # fmt: skip
    assert [(v.outcome, v.reason, v.tenant) for _, v in rejected] == [
        ("overflow", "cardinality", "acme")]  # fmt: skip
    assert "tenant 'acme'" in rejected[0][1].error


def test_a_rule_moved_into_a_tenants_pack_does_not_inherit_the_shared_rules_state() -> None:
    before = RuleEngine([rule()], NO_GRACE)
    run(before, [("default", "db-1", 95.0, T0 + i * 10) for i in range(2)])
    after = RuleEngine([rule("acme")], NO_GRACE)
    after.load(before.dump())
    assert after.series_count() == 0


# -- properties -------------------------------------------------------------------

RULES = [
    rule(name="avg_shared", condition={"op": ">", "threshold": 50, "for": "20s"}),
    rule(
        name="max_sliding",
        aggregation="max",
        window={"size": "1m", "step": "20s"},
        condition={"op": ">", "threshold": 80},
    ),
    rule("acme", name="acme_avg", condition={"op": ">", "threshold": 30}),
    rule(
        "beta",
        name="beta_p90",
        aggregation="quantile",
        quantile=0.9,
        window={"size": "40s", "step": "20s"},
        condition={"op": ">", "threshold": 70},
    ),
    rule(name="absent", aggregation="absent", absent_for="1m", window=None, condition=None),
]

samples = st.lists(
    st.tuples(
        st.sampled_from(["default", "acme", "beta"]),
        st.sampled_from(["a", "b"]),
        st.integers(min_value=0, max_value=100).map(float),
        st.integers(min_value=0, max_value=5),  # seconds since the previous sample
    ),
    min_size=1,
    max_size=150,
)


def _timed(stream: list[tuple[str, str, float, int]]) -> list[tuple[str, str, float, float]]:
    t, out = T0, []
    for tenant, host, v, dt in stream:
        t += dt
        out.append((tenant, host, v, t))
    return out


def _feed(e: RuleEngine, tenant: str, host: str, v: float, t: float, routed: bool) -> None:
    # routed: every series on one shared key, the route cache's worst case
    e.process_metric("memory_percent", {"host": host}, v, t, "", b"k" if routed else None,
                     tenant)  # fmt: skip


def _run(stream: list[tuple[str, str, float, float]], cuts: set[int], routed: bool = False,
         checkpoint_at: int | None = None) -> list[bytes]:  # fmt: skip
    e = RuleEngine(RULES, GRACE)
    out: list[bytes] = []
    for i, (tenant, host, v, t) in enumerate(stream):
        if i == checkpoint_at:
            restored = RuleEngine(RULES, GRACE)
            restored.load(e.dump())
            e = restored
        _feed(e, tenant, host, v, t, routed)
        if i in cuts:
            out += [encode(a) for a in e.advance()]
    return out + [encode(a) for a in e.advance()] + [encode(a) for a in e.flush()]


@settings(max_examples=60, deadline=None)
@given(samples, st.sets(st.integers(min_value=0, max_value=150)),
       st.integers(min_value=0, max_value=150))  # fmt: skip
def test_batches_checkpoints_and_routes_never_change_the_transitions_of_any_tenant(
    stream: list[tuple[str, str, float, int]], cuts: set[int], at: int
) -> None:
    timed = _timed(stream)
    # each tenant's transitions in their order; how two tenants' interleave depends on
    # when each one's clock passed a window end, relative to the advances
    whole = _by_tenant(_run(timed, set()))
    assert _by_tenant(_run(timed, cuts)) == whole
    assert _by_tenant(_run(timed, cuts, routed=True)) == whole
    assert _run(timed, set(range(0, 200, 7)), checkpoint_at=at) == _run(
        timed, set(range(0, 200, 7))
    )


def _by_tenant(alerts: list[bytes]) -> dict[str, list[bytes]]:
    out: dict[str, list[bytes]] = {}
    for a in alerts:
        out.setdefault(orjson.loads(a)["tenant"], []).append(a)
    return out


@settings(max_examples=60, deadline=None)
@given(samples, st.lists(st.integers(min_value=0, max_value=100).map(float), min_size=150,
                         max_size=150))  # fmt: skip
def test_a_tenants_alerts_are_the_same_with_or_without_another_tenants_identical_series(
    stream: list[tuple[str, str, float, int]], others: list[float]
) -> None:
    """Beta's copy of acme's series, at the same instants with values of its own, changes
    nothing in acme's alerts."""
    acme = [("acme", h, v, t) for _, h, v, t in _timed(stream)]
    alone = _run(acme, set())
    with_beta = [s for i, (_, h, v, t) in enumerate(acme)
                 for s in (acme[i], ("beta", h, others[i], t))]  # fmt: skip
    mixed = [orjson.loads(a) for a in _run(with_beta, set())]
    assert [a for a in mixed if a["tenant"] == "acme"] == [orjson.loads(a) for a in alone]

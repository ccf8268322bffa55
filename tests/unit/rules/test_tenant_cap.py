"""Per-series state is bounded per tenant: a tenant at its cap of series in a partition
has its new series refused (dead letters with a reason), and another tenant's new
series are still evaluated."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson

from processors.rules.engine import RuleEngine
from schemas.rules import Rule, RuleSettings
from streams.processor.feed import (
    CAPPED_REASON,
    OVERFLOW,
    RawRecord,
    Verdict,
    feed_metric,
    feed_metrics,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
SKEW = timedelta(minutes=5)
RULE = Rule.model_validate(
    {
        "name": "cpu_max",
        "signal": {"kind": "metric", "metric": "cpu"},
        "aggregation": "max",
        "window": {"size": "10s"},
        "condition": {"op": ">", "threshold": 90},
        "group_by": ["host"],
    }
)


def _sample(tenant: str, host: str, value: float, t: float) -> RawRecord:
    at = datetime.fromtimestamp(T0 + t, UTC).isoformat()
    labels = {"host": host}
    doc = {"name": "cpu", "value": value, "time": at, "labels": labels, "tenant": tenant}
    return RawRecord(orjson.dumps(doc), T0 + t, f"cpu{labels}".encode())


def _scrape(e: RuleEngine, t: float, hosts: dict[tuple[str, str], float]) -> list[Verdict]:
    recs = [_sample(tenant, host, v, t) for (tenant, host), v in hosts.items()]
    return [verdict for _, verdict in feed_metrics(e, recs, SKEW)]


def test_a_tenant_at_its_cap_does_not_stop_another_tenants_new_series() -> None:
    e = RuleEngine([RULE], RuleSettings(max_series_per_tenant=2))
    fired: list[tuple[str, str]] = []
    refused: list[Verdict] = []
    for t in range(0, 60, 5):
        hosts = {("noisy", "n1"): 10.0, ("noisy", "n2"): 10.0, ("quiet", "q1"): 10.0}
        if t >= 20:  # a third series of the noisy tenant, and a second of the quiet one
            hosts[("noisy", "n3")] = 99.0
            hosts[("quiet", "q2")] = 99.0
        refused += _scrape(e, float(t), hosts)
        fired += [(a.status, a.labels["host"]) for a in e.advance()]
    # the quiet tenant's new series is evaluated and pages; the noisy one's third is not
    assert fired == [("firing", "q2")]
    assert {v.tenant for v in refused} == {"noisy"}
    assert len(refused) == 8  # every sample of n3, from 20 s to 55 s
    v = refused[0]
    assert (v.outcome, v.reason) == (OVERFLOW, CAPPED_REASON)
    assert "tenant 'noisy'" in v.error and "'n3'" in v.error
    # the series the tenant already had are still evaluated
    late_spike = _sample("noisy", "n1", 99.0, 60.0)
    assert feed_metric(e, late_spike.value(), T0 + 60, SKEW, late_spike.key()).outcome == "ok"


def test_an_idle_series_makes_room_for_a_new_one_after_the_idle_hour() -> None:
    e = RuleEngine([RULE], RuleSettings(max_series_per_tenant=1))
    assert _scrape(e, 0.0, {("t", "old"): 10.0}) == []
    assert [v.reason for v in _scrape(e, 5.0, {("t", "new"): 10.0})] == [CAPPED_REASON]
    # "old" stays silent: the eviction that forgets its series runs on event time, when
    # a sample moves the watermark an idle hour past it
    assert _scrape(e, 2 * 3600.0, {("t", "new"): 10.0}) == []
    assert [v.reason for v in _scrape(e, 2 * 3600.0 + 5, {("t", "old"): 10.0})] == [CAPPED_REASON]


def test_the_tenant_counts_survive_a_checkpoint() -> None:
    e = RuleEngine([RULE], RuleSettings(max_series_per_tenant=1))
    _scrape(e, 0.0, {("t", "a"): 10.0, ("u", "b"): 10.0})
    restored = RuleEngine([RULE], RuleSettings(max_series_per_tenant=1))
    restored.load(e.dump())
    assert [v.tenant for v in _scrape(restored, 5.0, {("t", "c"): 10.0, ("u", "b"): 10.0})] == ["t"]


def test_a_partition_at_its_cap_of_tenants_refuses_a_new_tenant_not_the_known_ones() -> None:
    """Records naming ever new tenants (written past the gateway, which admits configured
    tenants only) cannot grow an engine each: past the cap they are dead letters, and
    the tenants already there keep paging."""
    from streams.processor.feed import TENANTS_CAPPED_REASON

    e = RuleEngine([RULE], RuleSettings(max_tenants_per_partition=3))
    fired: list[tuple[str, str]] = []
    refused: list[Verdict] = []
    for t in range(0, 40, 5):
        hosts = {("default", "d1"): 10.0, ("acme", "a1"): 10.0, ("globex", "g1"): 10.0}
        if t >= 10:
            hosts[("acme", "a1")] = 99.0
            hosts |= {(f"forged-{t}-{i}", "x"): 99.0 for i in range(3)}
        refused += _scrape(e, float(t), hosts)
        fired += [(a.status, a.labels["host"]) for a in e.advance()]
    assert fired == [("firing", "a1")], "the known tenant pages; no forged one does"
    assert len(e.partition.others) == 2
    assert {v.reason for v in refused} == {TENANTS_CAPPED_REASON}
    assert len(refused) == 3 * 6 and all(v.tenant.startswith("forged-") for v in refused)
    assert "max_tenants_per_partition" in refused[0].error
    assert "tenant 'forged-10-0'" in refused[0].error
    one = _sample("forged-99", "x", 1.0, 40.0)
    verdict = feed_metric(e, one.value(), T0 + 40, SKEW, one.key())
    assert (verdict.outcome, verdict.reason) == (OVERFLOW, TENANTS_CAPPED_REASON)

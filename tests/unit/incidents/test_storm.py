"""An alert storm in one group: bounded state, a digest that adds up, and O(1) per alert."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.sinks.ilert import ilert_event
from connectors.sinks.pagerduty import pagerduty_event
from connectors.slack.render import blocks
from processors.incidents import storm
from processors.incidents.ledger import Effect
from processors.incidents.lifecycle import Outcome, on_alert, on_tick
from processors.incidents.state import GroupState, Route, encode, from_dict
from processors.incidents.suppression import Suppressions
from schemas import Alert, Incident, IncidentEvent, decode
from schemas import encode as encode_event
from schemas.codec import encode_fields
from schemas.commands import Matcher, SilenceSpec
from schemas.config import load_config
from schemas.notifications import Notification
from streams.agents.bundle import MAX_BUNDLE, alert_bundles, items

CFG = load_config([Path("examples/config")])
T0 = datetime(2026, 2, 2, 10, 0, tzinfo=UTC)  # alice is on call for platform-primary
STATE_BOUND = 512 * 1024  # a group's table value, whatever it received
RECORD_BOUND = 512 * 1024  # any effect's record


def alert(fp: str, status: str = "firing", at: datetime = T0, labels: dict[str, str] | None = None,
          severity: str = "critical", event_id: str | None = None) -> Alert:  # fmt: skip
    return Alert(event_id=event_id or f"{fp}/{status}/{at.isoformat()}", fingerprint=fp,
                 status=status, rule="pagerduty_event", severity=severity,  # type: ignore[arg-type]
                 labels=labels if labels is not None else {"source": f"host-{fp[-2:]}", "x": "1"},
                 summary=f"disk full on {fp}", starts_at=at,
                 ends_at=at if status == "resolved" else None)  # fmt: skip


def group() -> GroupState:
    route = Route(service="search", team="platform", policy="platform-default")
    return GroupState(group_key="pagerduty|", route=route)


def storm_of(g: GroupState, n: int, start: datetime = T0) -> list[Effect]:
    effects: list[Effect] = []
    for i in range(n):
        now = start + timedelta(milliseconds=i)
        effects += on_alert(g, alert(f"pd-{i:06d}", at=now), now, CFG).effects
    return effects


def latest_incident(effects: list[Effect]) -> Incident:
    return [e for e in effects if isinstance(e, Incident)][-1]


def test_a_storm_is_summarised_in_a_bounded_state_and_the_incident_says_so() -> None:
    g = group()
    effects = storm_of(g, 10_000)
    assert len(g.members) == storm.MAX_TRACKED
    assert g.storm is not None and g.storm.fired + len(g.members) <= 10_000
    assert g.storm.events == 10_000 - storm.MAX_TRACKED  # every summarised event counted
    assert g.storm.fired >= 0.95 * (10_000 - storm.MAX_TRACKED)  # few bucket collisions
    assert len(encode(g)) < STATE_BOUND
    # summarised alerts write no ledger entry or snapshot each: the effects do not grow
    # with the storm beyond the tracked members and the storm's first entry
    assert len(effects) < 3 * storm.MAX_TRACKED + 20
    kinds = [e.kind for e in effects if isinstance(e, IncidentEvent)]
    assert kinds.count("storm") == 1
    inc = latest_incident(effects)
    assert len(inc.alerts) == storm.MAX_TRACKED and inc.storm is not None
    # every storm.EVERY the ledger tells the digest, and the snapshot carries it
    out = on_tick(g, T0 + timedelta(seconds=30), CFG)
    told = [e for e in out.effects if isinstance(e, IncidentEvent) and e.kind == "storm"]
    inc = latest_incident(out.effects)
    assert inc.storm is not None
    assert len(told) == 1 and told[0].message.startswith(
        f"storm: {inc.storm.summarised:,} more alerts"
    )
    # every summarised alert is distinct and fires: both estimates near the truth, the
    # sketch's bucket collisions put back
    assert abs(inc.storm.summarised - 9_900) <= 0.02 * 9_900, inc.storm.summarised
    assert abs(inc.storm.firing - 9_900) <= 0.02 * 9_900 and inc.storm.resolved == 0
    assert sum(inc.storm.by_label["x"].values.values()) == g.storm.fired
    source = inc.storm.by_label["source"]
    assert len(source.values) == storm.MAX_VALUES
    assert sum(source.values.values()) + source.other == g.storm.fired
    assert len(inc.storm.sample) == storm.SAMPLE
    for e in out.effects:
        assert len(encode_event(e)) < RECORD_BOUND


def test_summarised_alerts_reach_the_pages_and_slack_shows_the_digest() -> None:
    g = group()
    storm_of(g, 500)
    # alerts joining a notified incident are told in one update per group_interval
    out = on_tick(g, T0 + timedelta(minutes=6), CFG)
    updates = [n for n in out.notifications if n.kind == "update"]
    assert updates and all(n.storm is not None for n in updates)
    assert updates[0].storm is not None
    text = orjson.dumps(blocks(updates[0])).decode()
    assert f"storm: {updates[0].storm.summarised:,} more alerts summarised" in text
    assert "`source`: host-" in text
    line = updates[0].storm.line()  # PagerDuty and ilert carry the digest's line too
    pd = pagerduty_event(updates[0].model_copy(update={"kind": "trigger"}), "key")
    assert pd["payload"]["custom_details"]["storm"] == line
    assert line in ilert_event(updates[0], "key")["details"]


def test_a_silence_over_the_storm_holds_its_escalation_and_a_partial_one_does_not() -> None:
    """Summarised alerts are judged by the digest's sample: escalation waits while the
    tracked firing alerts and the sampled ones are all silenced."""

    def run(matcher: Matcher) -> Outcome:
        sup = Suppressions.from_config(CFG)
        g = group()
        for i in range(1_000):  # level 1 paged at once (critical)
            phase = "early" if i < storm.MAX_TRACKED else "late"
            on_alert(g, alert(f"pd-{i:06d}", labels={"x": "1", "phase": phase}), T0, CFG, sup)
        spec = SilenceSpec(matchers=[matcher], starts_at=T0, ends_at=T0 + timedelta(hours=2),
                           author="alice", comment="storm")  # fmt: skip
        sup.add_silence("s1", spec)
        return on_tick(g, T0 + timedelta(minutes=5), CFG, sup)

    held = run(Matcher(label="x", value="1"))  # every alert of the storm
    assert not held.notifications and held.suppressed == "silenced by alice: storm"
    # the tracked alerts only: the summarised ones still page
    partial = run(Matcher(label="phase", value="early"))
    assert "escalate" in {n.kind for n in partial.notifications}
    assert partial.suppressed is None


def test_a_stormy_incident_resolves_when_tracked_and_summarised_alerts_resolved() -> None:
    g = group()
    storm_of(g, 2_000)
    assert g.storm is not None
    now = T0 + timedelta(minutes=1)
    last = "pd-001999"
    for i in range(2_000):  # every alert resolves but one summarised alert
        fp = f"pd-{i:06d}"
        if fp != last:
            on_alert(g, alert(fp, "resolved", now), now, CFG)
    assert g.status == "triggered", "a summarised alert still fires"
    assert g.storm.firing == 1 and not g.firing()
    # a repeat of a resolved summarised alert's resolution changes nothing
    on_alert(g, alert("pd-001500", "resolved", now, event_id="again"), now, CFG)
    assert g.storm.firing == 1
    out = on_alert(g, alert(last, "resolved", now), now, CFG)
    assert g.status == "resolved"
    inc = latest_incident(out.effects)
    assert inc.status == "resolved" and inc.storm is not None and inc.storm.firing == 0
    kinds = [e.kind for e in out.events]
    assert kinds[-2:] == ["storm", "resolved"] or kinds[-1] == "resolved"
    assert {n.kind for n in out.notifications} == {"resolve"}


def test_a_tracked_alert_still_firing_holds_a_stormy_incident_open() -> None:
    g = group()
    storm_of(g, 300)
    now = T0 + timedelta(minutes=1)
    for i in range(1, 300):
        on_alert(g, alert(f"pd-{i:06d}", "resolved", now), now, CFG)
    assert g.status == "triggered" and g.storm is not None and g.storm.firing == 0
    on_alert(g, alert("pd-000000", "resolved", now), now, CFG)
    assert g.status == "resolved"


def test_a_critical_alert_inside_the_storm_raises_the_priority() -> None:
    g = group()
    for i in range(300):
        on_alert(g, alert(f"w-{i:04d}", severity="warning"), T0, CFG)
    assert g.severity == "warning"
    out = on_alert(g, alert("late-critical", severity="critical"), T0, CFG)
    assert g.severity == "critical"
    assert "priority_changed" in [e.kind for e in out.events]


def test_alerts_with_huge_labels_are_bounded_by_bytes_not_only_by_count() -> None:
    g = group()
    big = {f"k{j:02d}": "v" * 1024 for j in range(63)}
    for i in range(300):
        on_alert(g, alert(f"big-{i:04d}", labels={**big, "i": str(i)}), T0, CFG)
    assert len(g.members) < storm.MAX_TRACKED
    assert g.member_bytes <= storm.MEMBER_BYTES
    assert len(encode(g)) < STATE_BOUND
    inc = latest_incident(on_tick(g, T0 + timedelta(seconds=30), CFG).effects)
    assert len(encode_event(inc)) < RECORD_BOUND


def test_a_state_from_before_storms_loads_folded_into_a_digest() -> None:
    """An older state (no storm fields, thousands of members) loads bounded."""
    g = group()
    on_alert(g, alert("pd-000000"), T0, CFG)
    doc = orjson.loads(encode(g))
    for key in ("member_bytes", "storm", "storm_at"):
        del doc[key]
    member = doc["members"]["pd-000000"]
    for i in range(1, 3_300):
        fp = f"pd-{i:06d}"
        doc["members"][fp] = {**member, "fingerprint": fp,
                              "status": "resolved" if i % 3 == 0 else "firing"}  # fmt: skip
    assert len(orjson.dumps(doc)) > 1_000_000  # what no longer fitted a Kafka record
    loaded = from_dict(doc)
    assert len(loaded.members) == storm.MAX_TRACKED
    assert loaded.storm is not None
    folded = 3_300 - storm.MAX_TRACKED
    assert loaded.storm.events + loaded.storm.repeats >= folded
    firing = sum(1 for i in range(storm.MAX_TRACKED, 3_300) if i % 3)
    assert 0.95 * firing <= loaded.storm.firing <= firing
    assert len(encode(loaded)) < STATE_BOUND
    assert from_dict(orjson.loads(encode(loaded))) == loaded


@pytest.mark.parametrize("n", [0, 1, 100, 2_000, 20_000, 100_000])
def test_the_digest_counts_distinct_alerts_within_two_percent(n: int) -> None:
    """Against the exact count: repeats add nothing, and alerts that share a bucket of
    the sketch are counted (that sketch alone told 70,000 of 100,000 apart)."""
    d = storm.Digest(T0, T0)
    for i in range(n):
        storm.fire(d, f"storm-{i}", {}, T0, False)
    for i in range(0, n, 3):  # repeats of a third of them
        storm.fire(d, f"storm-{i}", {}, T0, False)
    v = storm.view(d)
    assert abs(v["summarised"] - n) <= 0.02 * n, (n, v["summarised"])
    assert abs(v["firing"] - n) <= 0.02 * n, (n, v["firing"])
    # half of them resolve: the alerts firing now, estimated; the distinct count stays
    for i in range(0, n, 2):
        storm.resolve(d, f"storm-{i}", T0)
    v = storm.view(d)
    assert abs(v["summarised"] - n) <= 0.02 * n
    # a resolution clears a bucket shared with a firing alert: firing is lower by the
    # share of buckets such pairs hold, at most the sketch's collision rate
    firing = n - (n + 1) // 2
    assert firing * (1 - 0.8 * n / storm.SKETCH_BITS) - 2 <= v["firing"] <= firing * 1.02 + 1
    back = storm.from_dict(orjson.loads(orjson.dumps(d, default=storm.encode_default)))
    assert storm.view(back) == v


def test_the_distinct_estimate_is_a_correct_hyperloglog() -> None:
    """The estimator alone, over registers filled as the sketch fills them, at sizes far
    beyond a storm's: within 2% everywhere, and empty registers say 0."""
    assert storm.distinct_estimate(bytes(1 << storm.HLL_P)) == 0
    d = storm.Digest(T0, T0)
    done = 0
    for n in (50, 5_000, 400_000):
        for i in range(done, n):
            storm._count(d, f"a-{i}")
        done = n
        assert abs(storm.distinct_estimate(d.registers) - n) <= 0.02 * n


def test_cpu_per_alert_does_not_grow_with_the_storm() -> None:
    """No O(alerts in the group) work per alert: ten times the storm, about ten times
    the CPU (a quadratic path would be a hundred times)."""

    def cost(n: int) -> float:
        g = group()
        alerts = [alert(f"pd-{i:06d}") for i in range(n)]
        started = time.process_time()
        for a in alerts:
            on_alert(g, a, T0, CFG)
        return time.process_time() - started

    cost(1_000)  # warm up
    small, large = min(cost(2_000) for _ in range(3)), cost(20_000)
    assert large < 30 * small, (small, large)


def test_bundles_are_split_by_bytes_and_keep_every_alert_in_order() -> None:
    gk = "pagerduty|" + "g" * 1024
    route = {"service": "search", "team": "platform", "policy": None, "severity": None}
    rows = [("gid", gk, route, alert(f"pd-{i:06d}", labels={"n": "v" * 200}), 150)
            for i in range(5_000)]  # fmt: skip
    records = alert_bundles(rows)
    assert len(records) > 1
    assert all(len(value) <= MAX_BUNDLE for _, value in records)
    back = [body for key, value in records for _, _, body in items(key, value)]
    assert [a.fingerprint for a in back if isinstance(a, Alert)] == \
        [r[3].fingerprint for r in rows]  # fmt: skip
    # however small the target, a single alert is never split further
    assert len(alert_bundles(rows[:3], target=1, limit=1)) == 3


# -- properties --------------------------------------------------------------------------

POOL = [f"fp-{i:03d}" for i in range(400)]
assert len({storm.bucket(f) for f in POOL}) == len(POOL)  # no shared bucket: exact counts
values = st.one_of(st.just("a"), st.text(alphabet="xyz", min_size=1000, max_size=1024))
label_sets = st.one_of(
    st.just({f"k{i}": "z" * 1024 for i in range(63)}),  # every label at its bound
    st.dictionaries(st.sampled_from([f"k{i}" for i in range(64)]), values, max_size=63),
)
# bursts: a run of the pool's fingerprints firing or resolving together, some of them
# carrying label sets near their bounds (the byte budget binds before the count does)
bursts = st.lists(
    st.tuples(st.integers(0, len(POOL) - 1), st.integers(1, 200),
              st.sampled_from(["firing", "firing", "resolved"]), st.booleans(),
              st.integers(0, 120)),
    min_size=1, max_size=12,
)  # fmt: skip


@settings(max_examples=40, deadline=None)
@given(bursts, label_sets)
def test_any_sequence_into_one_group_stays_bounded_and_the_counts_add_up(
    seq: list[tuple[int, int, str, bool, int]], big: dict[str, str]
) -> None:
    g = group()
    now = T0
    last: dict[str, str] = {}
    effects: list[Effect] = []
    for step, (lo, span, status, large, dt) in enumerate(seq):
        now += timedelta(seconds=dt)
        for j in range(lo, lo + span):
            fp = POOL[j % len(POOL)]
            labels = {**big, "fp": fp} if large else {"fp": fp, "source": f"s{j % 13}"}
            a = alert(fp, status, now, labels, event_id=f"e{step}/{j}")
            effects += on_alert(g, a, now, CFG).effects
            last[fp] = status
        effects += on_tick(g, now, CFG).effects
        assert len(encode(g)) < STATE_BOUND
    for e in effects:  # (the agents write them with encode_fields: the same bytes)
        assert len(encode_event(e)) < RECORD_BOUND
        assert encode_fields(e) == encode_event(e)
    assert len(g.members) <= storm.MAX_TRACKED and g.member_bytes <= storm.MEMBER_BYTES
    for fp, m in g.members.items():  # tracked members are exact
        assert m.status == last[fp]
    summarised = {fp for fp in last if fp not in g.members}
    d = g.storm
    if d is None:
        assert not summarised or all(last[fp] == "resolved" for fp in summarised)
    else:
        # each firing summarised alert is counted once, and only while it fires
        assert d.firing == sum(last[fp] == "firing" for fp in summarised)
        bits = sum(bin(b).count("1") for b in d.sketch)
        assert d.fired - d.resolved == bits == d.firing >= 0
        for tally in d.by_label.values():
            assert sum(tally.values.values()) + tally.other <= d.fired
    firing = any(s == "firing" for s in last.values())
    if firing:
        assert g.open
    elif not g.flapping:
        assert g.status in (None, "resolved")
    back = from_dict(orjson.loads(encode(g)))
    assert encode(back) == encode(g)
    for inc in (e for e in effects if isinstance(e, Incident)):
        assert decode(Incident, encode_event(inc)) == inc
    for note in (e for e in effects if isinstance(e, Notification)):
        assert decode(Notification, encode_event(note)) == note

"""The agents' batch step (streams/agents/decide.py) without Kafka: bundles of routed
alerts, replays after a crash, and the decoded-state cache never outliving the table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from processors.incidents.ledger import group_id
from processors.incidents.routing import route
from processors.incidents.state import to_dict
from processors.incidents.suppression import Suppressions
from schemas import Alert, decode, encode
from schemas.config import load_config
from schemas.incidents import Incident
from schemas.notifications import Notification
from streams.agents.decide import (
    Batch,
    Groups,
    Work,
    alert_bundle,
    latest_snapshots,
    work_value,
)

CFG = load_config([Path("examples/config")])
T0 = datetime(2026, 2, 2, 10, 0, tzinfo=UTC)  # alice is on call for platform-primary


def alert(host: str, status: str = "firing", n: int = 0) -> Alert:
    return Alert(event_id=f"{host}-{status}-{n}", fingerprint=host, status=status,  # type: ignore[arg-type]
                 rule="cpu", severity="critical", starts_at=T0,
                 labels={"alertname": "cpu", "service": "search", "host": host},
                 ends_at=T0 if status == "resolved" else None)  # fmt: skip


def routed(a: Alert) -> tuple[str, dict[str, object], bytes]:
    r = route(CFG, a.labels)[0]
    return r.group_key(a.labels), dict(r.decision.__dict__), encode(a)


def key(a: Alert) -> bytes:
    return group_id(routed(a)[0]).encode()


def bundle(alerts: list[Alert]) -> bytes:
    """The router's bundle of these alerts, each validated from the bytes it consumed."""
    rows = [(gk, r, decode(Alert, raw)) for gk, r, raw in map(routed, alerts)]
    return alert_bundle([(group_id(gk), gk, r, a) for gk, r, a in rows])


def version_1_bundle(alerts: list[Alert]) -> bytes:
    """A bundle as an older router wrote it: (group key, route, length) per alert in the
    header, then the alerts' bytes back to back."""
    rows = list(map(routed, alerts))
    head = [{"gk": gk, "route": r, "n": len(raw)} for gk, r, raw in rows]
    return orjson.dumps({"t": "alerts", "items": head}) + b"\n" + b"".join(i[2] for i in rows)


class Table(dict[bytes, bytes | None]):
    def write(self, groups: Groups, batch: Batch) -> None:
        for w in groups.written(batch):
            if w.value is None:
                self.pop(w.key, None)
            else:
                self[w.key] = w.value


def step(groups: Groups, table: Table, *records: Work) -> Batch:
    out = groups.decide(list(records), table)
    table.write(groups, out)
    return out


def pages(out: Batch) -> list[str]:
    return [e.notification_id for e in out.effects if isinstance(e, Notification)]


def new_groups(clock: list[datetime]) -> Groups:
    return Groups(CFG, Suppressions.from_config(CFG), lambda: clock[0])


def test_a_bundle_applies_each_alert_to_its_own_group_in_order() -> None:
    groups, table = new_groups([T0]), Table()
    a, b = alert("web-01"), alert("web-02")
    value = bundle([a, b, alert("web-01", "resolved")])
    out = step(groups, table, Work(key(a), value, 3, 10))
    assert set(table) == {key(a), key(b)}
    kinds = [getattr(e, "kind", "") for e in out.effects]
    assert "resolved" in kinds and kinds.count("opened") == 2
    doc = orjson.loads(table[key(a)] or b"")
    assert doc["status"] == "resolved" and doc["input_offset"] == 10


def test_both_bundle_versions_decide_the_same() -> None:
    batch = [alert("web-01"), alert("web-02"), alert("web-01", "resolved"), alert("web-01", n=1)]
    v1, v2 = version_1_bundle(batch), bundle(batch)
    one, two = new_groups([T0]), new_groups([T0])
    t1, t2 = Table(), Table()
    first = step(one, t1, Work(key(batch[0]), v1, 3, 10))
    second = step(two, t2, Work(key(batch[0]), v2, 3, 10))
    assert [encode(e) for e in first.effects] == [encode(e) for e in second.effects]
    assert t1 == t2 and len(t1) == 2


def test_only_the_last_snapshot_of_an_incident_in_a_batch_is_sent() -> None:
    batch = [alert("web-01"), alert("web-02"), alert("web-01", "resolved"), alert("web-01", n=1)]
    value = bundle(batch)
    out = step(new_groups([T0]), Table(), Work(key(batch[0]), value, 0, 1))
    snaps = [e for e in out.effects if isinstance(e, Incident)]
    latest = {e.incident_id: e.event_id for e in snaps}  # the last one of each wins
    assert len(snaps) == 4 and len(latest) == 2  # web-01: opened, resolved, reopened
    sent = latest_snapshots(out.effects)
    assert sorted(e.event_id for e in sent if isinstance(e, Incident)) == sorted(latest.values())
    others = [e for e in out.effects if not isinstance(e, Incident)]
    assert [e for e in sent if not isinstance(e, Incident)] == others  # the ledger: all


def test_a_replayed_record_is_a_no_op_and_a_lost_state_write_replays_the_same_ids() -> None:
    clock = [T0]
    groups, table = new_groups(clock), Table()
    a = alert("web-01")
    first = groups.decide([Work(key(a), bundle([a]), 0, 5)], table)
    # crash: the effects were acknowledged, the state write was lost; a new worker replays
    again = new_groups(clock).decide([Work(key(a), bundle([a]), 0, 5)], table)
    assert pages(again) == pages(first) and pages(first)
    table.write(groups, first)
    replay = step(new_groups(clock), table, Work(key(a), bundle([a]), 0, 5))
    assert replay.effects == [] and replay.applied == 0


def test_single_records_and_the_older_single_json_form_are_still_read() -> None:
    groups, table = new_groups([T0]), Table()
    a, b = alert("web-01"), alert("web-02")
    gk, r, raw = routed(a)
    step(groups, table, Work(key(a), work_value("alert", raw, gk=gk, route=r), 0, 1))
    gk, r, raw = routed(b)
    legacy = orjson.dumps({"t": "alert", "gk": gk, "route": r, "alert": raw.decode()})
    step(groups, table, Work(key(b), legacy, 0, 2))
    assert {orjson.loads(v or b"")["status"] for v in table.values()} == {"triggered"}


def test_the_cache_never_serves_a_state_the_table_no_longer_holds() -> None:
    clock = [T0]
    groups, table = new_groups(clock), Table()
    a = alert("web-01")
    step(groups, table, Work(key(a), bundle([a]), 0, 1))
    before = table[key(a)]
    step(groups, table, Work(key(a), bundle([alert("web-01", "resolved")]), 0, 2))
    # a rebalance restores an older copy from the changelog: a new bytes object
    table[key(a)] = bytes(bytearray(before or b""))
    out = step(groups, table, Work(key(a), bundle([alert("web-01", n=1)]), 0, 3))
    assert "alert_resolved" not in [getattr(e, "kind", "") for e in out.effects]
    assert orjson.loads(table[key(a)] or b"")["status"] == "triggered"


def test_a_failed_batch_leaves_no_mutated_state_behind() -> None:
    clock = [T0]
    groups, table = new_groups(clock), Table()
    a = alert("web-01")
    step(groups, table, Work(key(a), bundle([a]), 0, 1))
    groups.decide([Work(key(a), bundle([alert("web-01", "resolved")]), 0, 2)], table)
    groups.forget()  # sending the effects failed: nothing of that batch was written
    clock[0] = T0 + timedelta(seconds=1)
    out = step(groups, table, Work(key(a), bundle([alert("web-01", "resolved")]), 0, 2))
    assert "resolved" in [getattr(e, "kind", "") for e in out.effects]


def test_ticks_are_found_from_the_cached_deadlines_and_sent_once() -> None:
    clock = [T0]
    groups, table = new_groups(clock), Table()
    a = alert("web-01")
    step(groups, table, Work(key(a), bundle([a]), 0, 1))
    assert groups.due(table, T0) == []
    later = T0 + timedelta(hours=2)  # past level 0's timeout: escalate
    assert groups.due(table, later) == [key(a)]
    assert groups.due(table, later) == []  # a tick is already on its way
    clock[0] = later
    out = step(groups, table, Work(key(a), b'{"t":"tick"}', 0, 2))
    assert "escalated" in [getattr(e, "kind", "") for e in out.effects]


def test_states_are_stored_as_to_dict_would_store_them() -> None:
    groups, table = new_groups([T0]), Table()
    a = alert("web-01")
    out = groups.decide([Work(key(a), bundle([a]), 0, 1)], table)
    (w,) = groups.written(out)
    assert w.state is not None and w.value == orjson.dumps(to_dict(w.state))

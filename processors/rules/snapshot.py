"""Engine checkpoints: the whole state of one engine as bytes, and back.

The format is versioned JSON (orjson): a worker that finds a checkpoint of another
version or of a rule whose definition changed rebuilds that part by replay instead
of loading state that means something else.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

import orjson

from processors.anomaly import AnomalySeries
from processors.rules import tenancy
from processors.rules.condition import INACTIVE
from processors.rules.state import AnomalyGroup, Member, new_group
from schemas.alerts import Alert
from schemas.codec import decode, encode
from schemas.errors import TocsinError

if TYPE_CHECKING:
    from processors.rules.engine import RuleEngine

STATE_VERSION = 18  # 4: panes, not windows; 5: quantile panes may hold plain values;
# 6: anomaly detectors calibrate with a histogram (likelihood v3, holt_winters v2);
# window groups carry no detector slot; 7: likelihood v4 (weekly keeps hour-of-day slots);
# 8: detectors score rarity per unit of time (likelihood v5, holt_winters v3);
# 9: the episode is a bounded window of past peaks (likelihood v6, holt_winters v4)
# 10: counters are keyed by the escaped series key; 11: anomaly series v3 (a page needs
# a point that opened an episode); 12: per-series clocks and the closing watermark;
# 13: clocks filed by tenant, under a digest of the series key, in both modes; whether a
# pending was announced is the group entry's fifth field, not its state's sixth;
# 14: likelihood v7 (a short time scale of surprises informs alerts);
# 15: event time per tenant: each other tenant's engine under `tenants`, the partition's
# newest event time and when it next looks at its tenants
# 16: a rule's transitions decided between two advances (housekeeping, early and absent
# decisions, anomaly scores), not yet taken out, travel with the rule as `out`
# 17: likelihood v8 (the value density scores beside the Gaussian novelty)
# 18: an anomaly group's detectors, one per member series: the group entry's fourth
# field maps each series key to [last_seen, detector] (it was the group's one detector)


class IncompatibleState(TocsinError, ValueError):
    """A checkpoint written by another version of the engine."""


def dump(engine: RuleEngine) -> bytes:
    """The partition's engine, which is its provider's tenant's, with the others'."""
    doc = _engine_doc(engine)
    doc["v"] = STATE_VERSION
    p = engine.partition
    doc["partition_max"] = p.newest
    # as text: orjson writes both infinities (never; at the next move) as null
    doc["tenants_due"] = repr(p.due)
    doc["tenants"] = {tenant: _engine_doc(e) for tenant, e in p.others.items()}
    return orjson.dumps(doc)


def _engine_doc(engine: RuleEngine) -> dict[str, Any]:
    # a sample can decide a transition that only the next advance() takes out (an idle
    # series' due windows closed before it is forgotten, an absence, an early decision):
    # a checkpoint taken in between must carry it, or the restored engine never emits it
    undelivered: dict[int, list[list[Any]]] = {}
    for at, index, key, alert in engine._out:
        undelivered.setdefault(index, []).append([at, list(key), encode(alert).decode()])
    rules: dict[str, Any] = {}
    for rs in engine.rules:
        windows: dict[Any, list[list[Any]]] = {}
        for i, accs in rs.open.items():
            windows[str(i)] = [[list(key), acc.dump()] for key, acc in accs.items()]
        rules[rs.rule.rule.name] = {
            "sig": rs.rule.signature,
            "next_window": rs.next_window,
            "counters": rs.counters,
            "windows": windows,
            "groups": [
                [
                    list(key),
                    g.last_seen,
                    g.dump(),
                    {
                        series: [m.last_seen, base64.b64encode(m.detector.to_bytes()).decode()]
                        for series, m in g.members.items()
                    }
                    if isinstance(g, AnomalyGroup)
                    else None,
                    int(key in rs.announced),
                ]
                for key, g in rs.groups.items()
            ],
            "out": undelivered.get(rs.index, []),
        }
    return {
        "max_time": engine.max_time,
        "watermark": engine.watermark,
        "advances": engine.advances,
        "next_evict": engine.next_evict,
        "close_wm": engine.close_wm,
        "clocks": engine.clocks.dump(),
        "clocks_due": engine.clocks.due,
        "clocks_fresh": engine.clocks.fresh,
        "arrived": engine.arrived,
        "seen": engine.seen,
        "rules": rules,
    }


def load(engine: RuleEngine, data: bytes) -> None:
    doc = orjson.loads(data)
    if doc.get("v") != STATE_VERSION:
        raise IncompatibleState(f"unsupported rule-engine state version {doc.get('v')!r}")
    p = engine.partition
    p.newest = _num(doc["partition_max"])
    _load_engine(engine, doc)
    for tenant, saved in doc["tenants"].items():
        other = tenancy.engine_of(p, tenant, restoring=True)
        assert other is not None  # restoring is never refused
        _load_engine(other, saved)
    p.due = float(doc["tenants_due"])


def _load_engine(engine: RuleEngine, doc: dict[str, Any]) -> None:
    # orjson writes -inf (nothing seen yet) as null
    engine.max_time = _num(doc["max_time"])
    engine.watermark = _num(doc["watermark"])
    engine.advances = int(doc["advances"])
    engine.next_evict = _num(doc["next_evict"])
    engine.close_wm = _num(doc["close_wm"])
    engine.arrived = bool(doc["arrived"])
    engine.seen = _num(doc["seen"])
    # a checkpoint without the mark: assume a series may still come (the cautious side)
    fresh = bool(doc.get("clocks_fresh", True))
    # kept in both modes (they count each tenant's series); only `watermark: series`
    # re-reads them (with `partition`, `due` stays beyond every event time)
    due = _num(doc["clocks_due"]) if engine.per_series else float("inf")
    engine.clocks.load(doc["clocks"], due, fresh)
    engine._out = []
    for rs in engine.rules:
        saved = doc["rules"].get(rs.rule.rule.name)
        if saved is None or saved.get("sig") != rs.rule.signature:
            continue  # a rule added or changed since the checkpoint starts empty
        # in the order they were decided: advance() sorts them with what comes next
        engine._out += [
            (float(at), rs.index, tuple(key), decode(Alert, text)) for at, key, text in saved["out"]
        ]
        rs.next_window = saved["next_window"]
        rs.counters = {k: (float(v[0]), float(v[1])) for k, v in saved["counters"].items()}
        spec = rs.rule.anomaly
        for key_list, last_seen, state, members, announced in saved["groups"]:
            key = tuple(key_list)
            g = rs.groups[key] = new_group(rs.rule)
            g.last_seen = _num(last_seen)
            g.load_state(state)
            if members and isinstance(g, AnomalyGroup) and spec is not None:
                for series, (seen, detector) in members.items():
                    m = g.members[series] = Member(
                        AnomalySeries.from_bytes(spec, base64.b64decode(detector))
                    )
                    m.last_seen = _num(seen)
                g.retune(spec.threshold)
            if g.phase != INACTIVE:
                rs.active.add(key)
            if announced:
                rs.announced.add(key)
            if rs.rule.absent_s and g.phase == INACTIVE:
                rs.absent_due = min(rs.absent_due, g.last_seen + rs.rule.absent_s)
        rs.detectors = sum(
            len(g.members) for g in rs.groups.values() if isinstance(g, AnomalyGroup)
        )
        for i, entries in saved["windows"].items():
            accs = rs.open[int(i)] = {}
            for key_list, acc_data in entries:
                acc = rs.rule.new_accumulator()
                acc.load(acc_data)
                accs[tuple(key_list)] = acc
    engine.reschedule()


def _num(v: float | None) -> float:
    return float("-inf") if v is None else float(v)

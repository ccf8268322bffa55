"""The rule engine of one input partition: samples in, alert transitions out.

Pure and deterministic: event time comes from the samples, the watermark is
`max event time - allowed lateness`, and windows close only when the
watermark passes their end. The same input in the same order yields the same
transitions, whatever the batch boundaries, which is what makes crash
recovery by checkpoint + replay exact and backtesting faithful.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime
from typing import Any

import orjson

from processors.anomaly import AnomalySeries, AnomalyVerdict
from processors.rules.compiled import CompiledRule, render
from processors.rules.condition import FIRING, INACTIVE, PENDING, AlertState
from schemas.alerts import Alert, AnomalyDetail
from schemas.rules import Rule as RuleModel
from schemas.rules import RuleSettings

LATE = "late"
STATE_VERSION = 2
_STATUS = {PENDING: "pending", FIRING: "firing", INACTIVE: "resolved"}
_IDLE_EVICT_S = 3600.0
_EVICT_EVERY_S = 600.0


class Group:
    """One series of one rule (one combination of group_by label values)."""

    __slots__ = ("detector", "labels", "last_seen", "state", "windows")

    def __init__(self, labels: dict[str, str]) -> None:
        self.labels = labels
        self.windows: dict[float, Any] = {}
        self.state = AlertState()
        self.last_seen = float("-inf")
        self.detector: AnomalySeries | None = None


class RuleState:
    __slots__ = ("active", "counters", "groups", "next_end", "open_starts", "rule")

    def __init__(self, rule: CompiledRule) -> None:
        self.rule = rule
        self.groups: dict[tuple[str, ...], Group] = {}
        self.open_starts: dict[float, set[tuple[str, ...]]] = {}
        self.active: set[tuple[str, ...]] = set()  # pending or firing
        self.counters: dict[str, tuple[float, float]] = {}  # raw series -> (t, last value)
        self.next_end: float | None = None


class RuleEngine:
    def __init__(self, rules: list[RuleModel], settings: RuleSettings | None = None) -> None:
        settings = settings or RuleSettings()
        self.lateness = settings.allowed_lateness.total_seconds()
        self.rules = [RuleState(CompiledRule(r)) for r in rules]
        self._index = {id(rs): i for i, rs in enumerate(self.rules)}
        self.by_metric: dict[str, list[RuleState]] = {}
        self.log_rules: list[RuleState] = []
        for rs in self.rules:
            if rs.rule.is_log:
                self.log_rules.append(rs)
            elif rs.rule.metric is not None:
                self.by_metric.setdefault(rs.rule.metric, []).append(rs)
        self.max_time = float("-inf")
        self.watermark = float("-inf")
        self.overflows: list[tuple[str, dict[str, str]]] = []
        # (event time, rule index, group key, alert): sorted per advance so the output
        # order does not depend on where batch boundaries fell
        self._out: list[tuple[float, int, tuple[str, ...], Alert]] = []
        self._advances = 0
        self._next_evict = float("-inf")

    # -- input ------------------------------------------------------------------

    def process_metric(
        self, name: str, labels: dict[str, str], value: float, t: float, series: str = ""
    ) -> str | None:
        """Fold one sample in. Returns LATE when it is beyond the grace (not applied)."""
        if t < self.watermark:
            return LATE
        self._see(t)
        for rs in self.by_metric.get(name, ()):
            r = rs.rule
            if not r.matches(labels):
                continue
            v = value
            if r.counter:
                key = series or name + "\x00".join(f"{k}={labels[k]}" for k in sorted(labels))
                prev = rs.counters.get(key)
                rs.counters[key] = (t, value)
                if prev is None:
                    continue  # the first point of a counter has no increase yet
                # a counter that went down was reset: it counted up again from zero
                v = value - prev[1] if value >= prev[1] else value
            self._fold(rs, labels, v, True, t)
        return None

    def process_log(
        self, labels: dict[str, str], status: int | None, duration_ms: float | None, t: float
    ) -> str | None:
        if t < self.watermark:
            return LATE
        self._see(t)
        for rs in self.log_rules:
            r = rs.rule
            if not r.matches(labels) or not r.log_filter(status, labels):
                continue
            if r.log_value == "duration_ms":
                if duration_ms is None:
                    continue
                v = duration_ms
            else:
                v = 1.0
            hit = r.numerator(status, labels) if r.numerator is not None else True
            self._fold(rs, labels, v, hit, t)
        return None

    def _see(self, t: float) -> None:
        if t > self.max_time:
            self.max_time = t
            self.watermark = t - self.lateness

    def _fold(self, rs: RuleState, labels: dict[str, str], v: float, hit: bool, t: float) -> None:
        r = rs.rule
        key = r.group_labels(labels)
        g = rs.groups.get(key)
        if g is None:
            if len(rs.groups) >= r.rule.max_series:
                self.overflows.append((r.rule.name, labels))
                return
            g = rs.groups[key] = Group(dict(zip(r.group_by, key, strict=True)))
        if t > g.last_seen:
            g.last_seen = t
        if r.anomaly is not None:
            self._score(rs, key, g, v, t)
            return
        if r.aggregation == "absent":
            if g.state.phase == FIRING:
                g.state.phase = INACTIVE
                rs.active.discard(key)
                self._emit(rs, key, t, self._alert(rs, key, g, INACTIVE, t, None, None, None))
            return
        for start in r.window_starts(t):
            acc = g.windows.get(start)
            if acc is None:
                acc = g.windows[start] = r.new_accumulator()
                rs.open_starts.setdefault(start, set()).add(key)
            acc.add(v, hit)
        if rs.next_end is None:
            rs.next_end = r.window_starts(t)[0] + r.size

    def _score(self, rs: RuleState, key: tuple[str, ...], g: Group, v: float, t: float) -> None:
        spec = rs.rule.anomaly
        assert spec is not None
        if g.detector is None:
            g.detector = AnomalySeries(spec)
        verdict = g.detector.update(v, _dt(t))
        g.state.value = v
        if verdict.transition is None:
            return
        if verdict.transition == "firing":
            g.state.phase, g.state.active_since = FIRING, t
            rs.active.add(key)
        else:
            g.state.phase = INACTIVE
            rs.active.discard(key)
        self._emit(rs, key, t, self._anomaly_alert(rs, key, g, verdict, v, t))

    def _anomaly_alert(
        self,
        rs: RuleState,
        key: tuple[str, ...],
        g: Group,
        verdict: AnomalyVerdict,
        value: float,
        at: float,
    ) -> Alert:
        rule = rs.rule.rule
        fp = rs.rule.fingerprint(key)
        status = verdict.transition or "firing"
        labels = {**g.labels, **rule.labels, "alertname": rule.name}
        detail = AnomalyDetail(
            score=verdict.score,
            expected=verdict.expected,
            lower=verdict.lower,
            upper=verdict.upper,
            detector="likelihood",
        )
        summary = render(
            rule.summary,
            labels,
            value=value,
            threshold=verdict.expected,
            op="~",
            rule=rule.name,
            score=verdict.score,
            expected=verdict.expected,
        )
        return Alert(
            event_id=hashlib.sha256(f"{fp}:{status}:{at!r}".encode()).hexdigest()[:32],
            produced_at=_dt(at),
            fingerprint=fp,
            status=status,
            rule=rule.name,
            source="anomaly",
            severity=rule.severity,
            labels=labels,
            summary=summary,
            runbook_url=render(rule.runbook_url, labels) if rule.runbook_url else None,
            value=value,
            threshold=None,
            starts_at=_dt(min(g.state.active_since, at)),
            ends_at=_dt(at) if status == "resolved" else None,
            anomaly=detail,
        )

    # -- output -----------------------------------------------------------------

    def advance(self) -> list[Alert]:
        """Close every window the watermark has passed; return the transitions, in order."""
        return self._advance(self.watermark, check_absent=True)

    def flush(self) -> list[Alert]:
        """End of a finite input (backtests): close every open window, as if time went on
        by one window, without declaring the sources absent for having stopped."""
        horizon = max((rs.rule.size for rs in self.rules), default=0.0)
        return self._advance(self.max_time + horizon, check_absent=False)

    def _advance(self, wm: float, check_absent: bool) -> list[Alert]:
        for rs in self.rules:
            if rs.rule.anomaly is not None:
                continue  # scored sample by sample in _fold
            if rs.rule.aggregation == "absent":
                if check_absent:
                    self._check_absent(rs, wm)
            else:
                self._close_windows(rs, wm)
        self._advances += 1
        # eviction follows event time, not call count, so a replay evicts exactly as the
        # original run did
        if wm >= self._next_evict:
            self._evict_idle(wm)
            self._next_evict = (wm // _EVICT_EVERY_S + 1) * _EVICT_EVERY_S
        out, self._out = self._out, []
        out.sort(key=lambda item: (item[0], item[1], item[2]))
        return [alert for *_, alert in out]

    def _emit(self, rs: RuleState, key: tuple[str, ...], at: float, alert: Alert) -> None:
        self._out.append((at, self._index[id(rs)], key, alert))

    def _close_windows(self, rs: RuleState, wm: float) -> None:
        r = rs.rule
        cond = r.condition
        assert cond is not None
        while rs.next_end is not None and rs.next_end <= wm:
            end = rs.next_end
            start = end - r.size
            keys = rs.open_starts.pop(start, set())
            for key in sorted(keys | rs.active):
                g = rs.groups[key]
                acc = g.windows.pop(start, None)
                enough = acc is not None and acc.samples() >= r.rule.min_samples
                value = acc.result() if acc is not None and enough else None
                change = g.state.evaluate(cond, value, end)
                if change is None:
                    continue
                if change == INACTIVE:
                    rs.active.discard(key)
                else:
                    rs.active.add(key)
                self._emit(rs, key, end, self._alert(rs, key, g, change, end, value, start, end))
            if rs.open_starts or rs.active:
                rs.next_end = end + r.step
            else:
                # nothing open: jump to the grid point past the watermark (no empty loop)
                rs.next_end = (wm // r.step) * r.step + r.step
                break

    def _check_absent(self, rs: RuleState, wm: float) -> None:
        limit = rs.rule.absent_s
        for key in sorted(rs.groups):
            g = rs.groups[key]
            if g.state.phase != FIRING and wm - g.last_seen >= limit:
                g.state.phase = FIRING
                g.state.active_since = g.last_seen + limit
                rs.active.add(key)
                at = g.last_seen + limit
                self._emit(
                    rs, key, at, self._alert(rs, key, g, FIRING, at, wm - g.last_seen, None, None)
                )

    def _evict_idle(self, wm: float) -> None:
        for rs in self.rules:
            if rs.rule.aggregation == "absent":
                continue
            if rs.rule.anomaly is not None:
                idle = rs.rule.anomaly.idle_evict
                horizon = wm - (idle.total_seconds() if idle else 24 * 3600.0)
                for key in [k for k, g in rs.groups.items() if g.last_seen < horizon]:
                    del rs.groups[key]
                continue
            horizon = wm - rs.rule.size - _IDLE_EVICT_S
            for key in [
                k
                for k, g in rs.groups.items()
                if not g.windows and g.state.phase == INACTIVE and g.last_seen < horizon
            ]:
                del rs.groups[key]
            for series in [s for s, (t, _) in rs.counters.items() if t < horizon]:
                del rs.counters[series]

    def _alert(
        self,
        rs: RuleState,
        key: tuple[str, ...],
        g: Group,
        phase: int,
        at: float,
        value: float | None,
        w_start: float | None,
        w_end: float | None,
    ) -> Alert:
        rule = rs.rule.rule
        cond = rule.condition
        status = _STATUS[phase]
        fp = rs.rule.fingerprint(key)
        labels = {**g.labels, **rule.labels, "alertname": rule.name}
        shown = value if value is not None else g.state.value
        threshold = (
            cond.threshold if cond else rule.absent_for.total_seconds() if rule.absent_for else None
        )
        starts = g.state.active_since
        # deterministic envelope: a replay after a crash produces the very same event
        event_id = hashlib.sha256(f"{fp}:{status}:{at!r}".encode()).hexdigest()[:32]
        when = _dt(at)
        return Alert(
            event_id=event_id,
            produced_at=when,
            fingerprint=fp,
            status=status,
            rule=rule.name,
            source="rule",
            severity=rule.severity,
            labels=labels,
            summary=render(
                rule.summary,
                labels,
                value=shown,
                threshold=threshold,
                op=cond.op if cond else ">",
                rule=rule.name,
            ),
            runbook_url=render(rule.runbook_url, labels) if rule.runbook_url else None,
            value=shown,
            threshold=threshold,
            starts_at=_dt(min(starts, at)),
            ends_at=when if status == "resolved" else None,
            window_start=_dt(w_start) if w_start is not None else None,
            window_end=_dt(w_end) if w_end is not None else None,
        )

    # -- checkpoints ------------------------------------------------------------

    def series_count(self) -> int:
        return sum(len(rs.groups) for rs in self.rules)

    def anomaly_memory_bytes(self) -> int:
        """Estimated bytes held by anomaly detectors (reported as a metric)."""
        return sum(
            g.detector.memory_bytes()
            for rs in self.rules
            for g in rs.groups.values()
            if g.detector is not None
        )

    def dump(self) -> bytes:
        rules: dict[str, Any] = {}
        for rs in self.rules:
            rules[rs.rule.rule.name] = {
                "next_end": rs.next_end,
                "counters": rs.counters,
                "groups": [
                    [
                        list(key),
                        g.last_seen,
                        g.state.dump(),
                        [[s, acc.dump()] for s, acc in g.windows.items()],
                        base64.b64encode(g.detector.to_bytes()).decode() if g.detector else None,
                    ]
                    for key, g in rs.groups.items()
                ],
            }
        return orjson.dumps(
            {
                "v": STATE_VERSION,
                "max_time": self.max_time,
                "watermark": self.watermark,
                "advances": self._advances,
                "next_evict": self._next_evict,
                "rules": rules,
            }
        )

    def load(self, data: bytes) -> None:
        doc = orjson.loads(data)
        if doc.get("v") != STATE_VERSION:
            raise ValueError(f"unsupported rule-engine state version {doc.get('v')!r}")
        # orjson writes -inf (nothing seen yet) as null
        self.max_time = _num(doc["max_time"])
        self.watermark = _num(doc["watermark"])
        self._advances = int(doc["advances"])
        self._next_evict = _num(doc["next_evict"])
        for rs in self.rules:
            saved = doc["rules"].get(rs.rule.rule.name)
            if saved is None:
                continue  # a rule added since the checkpoint starts empty
            rs.next_end = saved["next_end"]
            rs.counters = {k: (float(v[0]), float(v[1])) for k, v in saved["counters"].items()}
            for key_list, last_seen, state, windows, detector in saved["groups"]:
                key = tuple(key_list)
                g = rs.groups[key] = Group(dict(zip(rs.rule.group_by, key, strict=True)))
                g.last_seen = _num(last_seen)
                g.state = AlertState.load(state)
                if detector is not None and rs.rule.anomaly is not None:
                    raw = base64.b64decode(detector)
                    g.detector = AnomalySeries.from_bytes(rs.rule.anomaly, raw)
                if g.state.phase != INACTIVE:
                    rs.active.add(key)
                for start, acc_data in windows:
                    acc = rs.rule.new_accumulator()
                    acc.load(acc_data)
                    g.windows[float(start)] = acc
                    rs.open_starts.setdefault(float(start), set()).add(key)


def _num(v: float | None) -> float:
    return float("-inf") if v is None else float(v)


def _dt(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)

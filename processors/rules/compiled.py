"""Rules compiled for the hot path: predicates, window arithmetic, accumulator factories."""

from __future__ import annotations

import hashlib
import operator
import string
from collections.abc import Callable
from functools import partial
from typing import Any

import orjson

from processors.rules.aggregates import (
    Accumulator,
    Avg,
    Count,
    Last,
    Max,
    Min,
    Quantile,
    Ratio,
    Sum,
    new_mapping,
)
from processors.rules.condition import CompiledCondition
from processors.rules.matching import LabelPredicate, compile_matchers
from schemas.rules import LogFilter, LogSignal, MetricSignal, Rule

# the provider's own tenant: its group keys, fingerprints and checkpoints are those of
# an installation without tenants (state.GroupKey)
DEFAULT_TENANT = "default"

StatusPredicate = Callable[[int | None, dict[str, str]], bool]
_CLASS = {"1xx": 1, "2xx": 2, "3xx": 3, "4xx": 4, "5xx": 5}


def compile_log_filter(f: LogFilter) -> StatusPredicate:
    classes = {_CLASS[c] for c in f.status_class}
    lo, hi = f.status_min, f.status_max
    labels_ok = compile_matchers(f.matchers)

    def check(status: int | None, labels: dict[str, str]) -> bool:
        if classes or lo is not None or hi is not None:
            if status is None:
                return False
            if classes and status // 100 not in classes:
                return False
            if lo is not None and status < lo:
                return False
            if hi is not None and status > hi:
                return False
        return labels_ok(labels)

    return check


_ACCUMULATORS: dict[str, type[Accumulator]] = {
    "avg": Avg,
    "sum": Sum,
    "rate": Sum,  # the sum of counter increases, divided by the window at close
    "count": Count,
    "min": Min,
    "max": Max,
    "last": Last,
    "ratio": Ratio,
}


# aggregations whose accumulators depend on nothing but the samples (a quantile's sketch
# mapping is the rule's own object)
_SHAREABLE = frozenset({"avg", "sum", "count", "min", "max", "last"})


class CompiledRule:
    """One rule, ready for the hot path.

    Windows live on an integer grid: window `i` spans `[i * step, i * step + size)`.
    Integer indices (not float start times) keep sub-second steps exact and make the
    window a sample falls in a single floor division.
    """

    __slots__ = (
        "absent_s",
        "aggregation",
        "anomaly",
        "combine",
        "condition",
        "counter",
        "early",
        "group_by",
        "is_log",
        "key_of",
        "log_filter",
        "log_value",
        "mapping",
        "matches",
        "metric",
        "n_windows",
        "new_accumulator",
        "numerator",
        "per_second",
        "per_series",
        "rule",
        "share_key",
        "signature",
        "size",
        "start_accumulator",
        "step",
        "tenant",
    )

    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        # the tenant whose samples alone the rule sees; None: the shared pack's
        self.tenant = rule.tenant
        # a checkpoint of a rule whose definition changed is not restored into it; nor
        # is one of a rule that moved between the shared pack and a tenant's (the
        # tenant is not part of the rule's serialised form)
        digest = hashlib.sha256(rule.model_dump_json().encode())
        if rule.tenant is not None:
            digest.update(b"\x00tenant=" + rule.tenant.encode())
        self.signature = digest.hexdigest()[:16]
        self.aggregation = rule.aggregation
        sig = rule.signal
        self.is_log = isinstance(sig, LogSignal)
        self.metric = sig.metric if isinstance(sig, MetricSignal) else None
        # an absence is the same whether the series counts or not
        self.counter = (
            isinstance(sig, MetricSignal) and sig.counter and rule.aggregation != "absent"
        )
        # None (not an always-true function) when there is nothing to check: saves a
        # call per sample per rule
        self.matches: LabelPredicate | None = (
            compile_matchers(sig.matchers) if sig.matchers else None
        )
        self.log_filter: StatusPredicate | None = (
            compile_log_filter(sig.filter)
            if isinstance(sig, LogSignal) and sig.filter is not None
            else None
        )
        self.log_value = sig.value if isinstance(sig, LogSignal) else "count"
        self.numerator = compile_log_filter(rule.numerator) if rule.numerator else None
        self.group_by = tuple(rule.group_by)
        self.key_of = _key_function(self.group_by)
        self.condition = CompiledCondition(rule.condition) if rule.condition else None
        self.absent_s = rule.absent_for.total_seconds() if rule.absent_for else 0.0
        self.anomaly = rule.anomaly
        self.per_second = rule.aggregation == "rate"
        self.early = rule.early
        self.mapping = new_mapping() if rule.aggregation == "quantile" else None
        # a zero-argument factory (a class or a partial: C-level calls, no method lookup)
        self.combine = (
            Quantile.combine
            if self.mapping is not None
            else _ACCUMULATORS.get(rule.aggregation, Avg).combine
        )
        self.new_accumulator: Callable[[], Accumulator] = (
            partial(Quantile, rule.quantile or 0.5, self.mapping)
            if self.mapping is not None
            else _ACCUMULATORS.get(rule.aggregation, Avg)  # absent/anomaly: never called
        )
        # an accumulator with its first sample: the pane-start path
        self.start_accumulator: Callable[[float, bool], Accumulator] = (
            partial(Quantile.started, rule.quantile or 0.5, self.mapping)
            if self.mapping is not None
            else _ACCUMULATORS.get(rule.aggregation, Avg).first
        )
        if rule.window is not None:
            self.size = rule.window.size.total_seconds()
            self.step = rule.window.step_or_size.total_seconds()
            self.n_windows = round(self.size / self.step)
        else:
            self.size = self.step = 0.0
            self.n_windows = 0
        # an anomaly rule without a window scores every sample with its series' own
        # detector (with one, the group's value per window)
        self.per_series = self.anomaly is not None and not self.n_windows
        # rules whose accumulators hold the same values, sample for sample: the same
        # plain (not counter) metric signal, aggregation, window and grouping
        self.share_key: str | None = (
            orjson.dumps(
                [
                    sig.model_dump(mode="json"),
                    rule.aggregation,
                    self.size,
                    self.step,
                    self.group_by,
                ]
            ).decode()
            if isinstance(sig, MetricSignal)
            and not sig.counter
            and self.n_windows
            and rule.aggregation in _SHAREABLE
            else None
        )

    def group_labels(self, key: tuple[str, ...]) -> dict[str, str]:
        # a tenant's key ends with the tenant (state.GroupKey): not a label
        return dict(zip(self.group_by, key, strict=False))

    def tenant_of(self, key: tuple[str, ...]) -> str:
        """Whose series a group key is (state.GroupKey)."""
        return key[-1] if len(key) > len(self.group_by) else DEFAULT_TENANT

    def fingerprint(self, key: tuple[str, ...]) -> str:
        h = hashlib.sha256()
        if len(key) > len(self.group_by):
            # another tenant's identical series is another alert; the provider's own
            # fingerprints stay those of an installation without tenants. Unambiguous:
            # rule names hold neither NUL nor "=", which follow a provider's name
            h.update(key[-1].encode() + b"\x00")
        h.update(self.rule.name.encode())
        for k, v in zip(self.group_by, key, strict=False):
            h.update(b"\x00" + k.encode() + b"=" + v.encode())
        return h.hexdigest()[:16]


KeyFunction = Callable[[dict[str, str]], tuple[str, ...]]


def _key_function(group_by: tuple[str, ...]) -> KeyFunction:
    """labels -> the group key; a missing label counts as "" (as in Prometheus)."""
    if not group_by:
        return lambda labels: ()
    if len(group_by) == 1:
        (only,) = group_by
        return lambda labels: (labels.get(only, ""),)
    getter = operator.itemgetter(*group_by)

    def key_of(labels: dict[str, str]) -> tuple[str, ...]:
        try:
            return getter(labels)  # type: ignore[no-any-return]  # one C call, the usual case
        except KeyError:
            return tuple(labels.get(k, "") for k in group_by)

    return key_of


class _Missing(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return ""


def render(template: str, labels: dict[str, str], **values: Any) -> str:
    """Fill a summary/runbook template; a bad template degrades to itself, never raises."""
    ctx = _Missing(labels)
    ctx.update({k: v for k, v in values.items() if v is not None})
    ctx["labels"] = ", ".join(f"{k}={v}" for k, v in sorted(labels.items()))
    try:
        return string.Formatter().vformat(template, (), ctx)
    except (ValueError, TypeError, IndexError, KeyError, AttributeError):
        return template

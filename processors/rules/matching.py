"""Label matchers compiled once into plain predicates (Prometheus semantics:
regexes are fully anchored; a missing label matches as the empty string)."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from schemas.commands import Matcher

LabelPredicate = Callable[[dict[str, str]], bool]


def compile_matchers(matchers: Sequence[Matcher]) -> LabelPredicate:
    checks: list[LabelPredicate] = [_compile(m) for m in matchers]
    if not checks:
        return _always
    if len(checks) == 1:
        return checks[0]
    return lambda labels: all(c(labels) for c in checks)


def _always(_: dict[str, str]) -> bool:
    return True


def _compile(m: Matcher) -> LabelPredicate:
    label, value = m.label, m.value
    if m.op == "=":
        return lambda labels: labels.get(label, "") == value
    if m.op == "!=":
        return lambda labels: labels.get(label, "") != value
    pattern = re.compile(value)
    if m.op == "=~":
        return lambda labels: pattern.fullmatch(labels.get(label, "")) is not None
    return lambda labels: pattern.fullmatch(labels.get(label, "")) is None

"""Routing: a tree of label matchers with `continue` (Alertmanager semantics)."""

from __future__ import annotations

from dataclasses import dataclass

from processors.incidents.state import Route as Decision
from processors.rules.matching import LabelPredicate, compile_matchers
from schemas.config.models import Config, Route


@dataclass(frozen=True, slots=True)
class Routed:
    path: str
    decision: Decision
    group_by: tuple[str, ...]

    def group_key(self, labels: dict[str, str]) -> str:
        return f"{self.path}|" + ",".join(f"{k}={labels.get(k, '')}" for k in self.group_by)


def route(cfg: Config, labels: dict[str, str]) -> list[Routed]:
    """Alertmanager semantics: depth first; the first matching child wins unless it says
    `continue`; a route with no matching child handles the alert itself."""
    root = cfg.route
    base = Decision(service=labels.get("service"), team=root.team, policy=root.escalation_policy,
                    severity=root.severity)  # fmt: skip
    group_by = tuple(root.group_by or cfg.grouping.group_by)
    return _walk(root, "root", labels, base, group_by) or [Routed("root", base, group_by)]


_COMPILED: dict[int, tuple[Route, LabelPredicate]] = {}


def _matches(r: Route, labels: dict[str, str]) -> bool:
    """The route's matchers, compiled once per route object (routing runs per alert)."""
    hit = _COMPILED.get(id(r))
    if hit is None or hit[0] is not r:
        if len(_COMPILED) > 4096:  # configs replaced over a long life: start over
            _COMPILED.clear()
        hit = _COMPILED[id(r)] = (r, compile_matchers(r.matchers))
    return hit[1](labels)


def _walk(r: Route, path: str, labels: dict[str, str], inherited: Decision,
          group_by: tuple[str, ...]) -> list[Routed]:  # fmt: skip
    if not _matches(r, labels):
        return []
    here = Decision(
        service=r.service or inherited.service, team=r.team or inherited.team,
        policy=r.escalation_policy or inherited.policy, severity=r.severity or inherited.severity,
    )  # fmt: skip
    gb = tuple(r.group_by) if r.group_by is not None else group_by
    found: list[Routed] = []
    for i, child in enumerate(r.routes):
        matched = _walk(child, f"{path}.{i}", labels, here, gb)
        found += matched
        if matched and not child.continue_:
            break
    return found or [Routed(path, here, gb)]

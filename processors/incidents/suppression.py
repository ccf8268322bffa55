"""Why an alert must not page right now: silences, maintenance windows, inhibition.

`Suppressions` is pure data plus questions about it; the runtime keeps it up to
date (silences created from Slack or the CLI, the labels of alerts that can
inhibit others) and the core asks it with an explicit `now`. Suppression only
ever mutes pages: an incident that already paged somebody still tells them when
it resolves (the resolve contract lives in the lifecycle, not here).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from processors.rules.matching import LabelPredicate, compile_matchers
from schemas.commands import SilenceSpec, Weekly
from schemas.config.models import Config, Inhibition


@dataclass(frozen=True, slots=True)
class _Rule:
    source: LabelPredicate
    target: LabelPredicate
    equal: tuple[str, ...]
    text: str


@dataclass(frozen=True, slots=True)
class _Silence:
    matches: LabelPredicate
    starts_at: datetime
    ends_at: datetime
    reason: str
    weekly: Weekly | None = None  # a recurring window: muted only inside its windows

    def active(self, now: datetime) -> bool:
        if not self.starts_at <= now < self.ends_at:
            return False
        return self.weekly is None or self.weekly.covers(now)


def _silence(spec: SilenceSpec, kind: str) -> _Silence:
    reason = f"{kind} by {spec.author}" + (f": {spec.comment}" if spec.comment else "")
    if spec.weekly is not None:
        reason = f"maintenance ({spec.weekly.describe()}) by {spec.author}" + (
            f": {spec.comment}" if spec.comment else "")  # fmt: skip
    return _Silence(compile_matchers(spec.matchers), spec.starts_at, spec.ends_at, reason,
                    spec.weekly)  # fmt: skip


def _rule(r: Inhibition) -> _Rule:
    text = ",".join(f"{m.label}{m.op}{m.value}" for m in r.source)
    return _Rule(compile_matchers(r.source), compile_matchers(r.target), tuple(r.equal), text)


@dataclass
class Suppressions:
    """Silences (config and dynamic), maintenance windows and inhibition sources."""

    silences: list[_Silence] = field(default_factory=list)
    rules: list[_Rule] = field(default_factory=list)
    # fingerprint -> labels of a firing alert that matches some inhibition source
    sources: dict[str, dict[str, str]] = field(default_factory=dict)
    dynamic: dict[str, _Silence] = field(default_factory=dict)

    @classmethod
    def from_config(cls, cfg: Config) -> Suppressions:
        silences = [_silence(s, "silenced") for s in cfg.silences]
        for m in cfg.maintenance:
            matches = compile_matchers(m.matchers)
            silences.append(_Silence(matches, m.start, m.end, f"maintenance: {m.comment}"))
        return cls(silences=silences, rules=[_rule(r) for r in cfg.inhibitions])

    # -- updates (the runtime feeds these from the broadcast `suppressions` topic) --------

    def add_silence(self, silence_id: str, spec: SilenceSpec) -> None:
        self.dynamic[silence_id] = _silence(spec, "silenced")

    def remove_silence(self, silence_id: str) -> None:
        """A silence expired by hand: it mutes nothing from now on."""
        self.dynamic.pop(silence_id, None)

    def is_source(self, labels: dict[str, str]) -> bool:
        """Whether an alert with these labels can inhibit others (worth broadcasting)."""
        return any(r.source(labels) for r in self.rules)

    def set_source(self, fingerprint: str, labels: dict[str, str] | None) -> None:
        """A source alert fires (labels) or stops firing (None)."""
        if labels is None:
            self.sources.pop(fingerprint, None)
        else:
            self.sources[fingerprint] = labels

    def expire(self, now: datetime) -> None:
        """Forget dynamic silences that ended: they can never match again."""
        for sid in [k for k, s in self.dynamic.items() if s.ends_at <= now]:
            del self.dynamic[sid]

    # -- questions -------------------------------------------------------------------------

    def reason(self, fingerprint: str, labels: dict[str, str], now: datetime) -> str | None:
        """Why this alert must not page at `now` (silence, maintenance, inhibition), or None."""
        for s in self._all_silences():
            if s.active(now) and s.matches(labels):
                return s.reason
        for r in self.rules:
            if not r.target(labels):
                continue
            for fp, src in self.sources.items():
                if fp == fingerprint or not r.source(src):
                    continue  # an alert never inhibits itself
                if all(src.get(k, "") == labels.get(k, "") for k in r.equal):
                    return f"inhibited by {src.get('alertname', fp)} ({r.text})"
        return None

    def _all_silences(self) -> Iterable[_Silence]:
        yield from self.silences
        yield from self.dynamic.values()


NO_SUPPRESSION = Suppressions()

"""What pages in the NAB benchmarks: the alerting rule, its replay, and the candidate rules.

Each firing transition of a rule (k of n points at or over the threshold after the
warm-up, one of them opening a new episode, no new firing until `resolve_after` quiet
points resolved it) is a detection of 1.0 on NAB's standard profile. The candidates are
ALL_RULES that page a series at most once a month on pure noise (Gaussian and lognormal,
`noise_corpus`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from benchmarks.nab_halves import Corpus
from benchmarks.nab_scores import STANDARD, Scored, file_rows, score_variant
from benchmarks.nab_variants import Variant
from processors.evaluation.nab import FileRows


@dataclass(frozen=True)
class Rule:
    threshold: float
    k: int
    n: int
    warm_up: int = 150
    resolve_after: int = 10
    # "fresh": as AnomalySeries, k of n rare points, one of which opened a new episode (its
    # episode score over the threshold too); "rarity": k of n rare points (the rule before)
    on: str = "fresh"
    urgent: float = 1.0  # one point this rare (and opening an episode) pages at once

    def __str__(self) -> str:
        urgent = f" or 1 at {self.urgent:.2f}" if self.urgent < 1.0 else ""
        quiet = f", resolve {self.resolve_after}" if self.resolve_after != 10 else ""
        warm = f", warm-up {self.warm_up}" if self.warm_up != 150 else ""
        return f"{self.threshold:.2f}, {self.k} of {self.n} on {self.on}{urgent}{quiet}{warm}"


# Pages worth waking up for: a rule is a candidate only if pure noise pages a series at
# most once a month (NAB's false-positive cost alone would favour paging on every rare point).
NOISE_PAGES_PER_DAY = 1 / 30
URGENT = [1.0]
ALL_RULES = [
    Rule(t, k, n, on=on, urgent=urgent)
    for t in (0.25, 0.30, 0.35, 0.40, 0.45, 0.50)
    for k, n in ((1, 1), (2, 3), (2, 5), (2, 10))
    for on in ("fresh", "rarity")
    for urgent in URGENT
]


def noise_corpus(days: int = 30) -> Corpus:
    """Gaussian and lognormal noise, 5-minute samples, two seeds each: no anomaly at all."""
    out: Corpus = []
    t0 = datetime(2026, 1, 5, tzinfo=UTC)
    for kind in ("gauss", "lognormal"):
        for seed in (1, 2):
            rng = random.Random(seed)
            values = [
                100 + rng.gauss(0, 2) if kind == "gauss" else 100 * rng.lognormvariate(0, 0.5)
                for _ in range(days * 288)
            ]
            ats = [t0 + timedelta(minutes=5 * i) for i in range(len(values))]
            out.append((f"noise/{kind}-{seed}", [str(a) for a in ats], values, ats))
    return out


def noise_pages_per_day(noise: Scored, rule: Rule) -> float:
    """Pages a day on pure noise (after the first day), the worst of the noise series."""
    return max(
        sum(alerts(noise, f, rule)[288:]) / (len(r) / 288 - 1) for f, r in enumerate(noise.rarity)
    )


def rules_for(variant: Variant) -> list[Rule]:
    noise = score_variant(noise_corpus(), variant)
    return [r for r in ALL_RULES if noise_pages_per_day(noise, r) <= NOISE_PAGES_PER_DAY]


def alerts(s: Scored, f: int, rule: Rule) -> list[float]:
    """1.0 at each firing transition of the rule: AnomalySeries' debouncing, replayed."""
    rarity, episode = s.rarity[f], s.scores[f]
    out = [0.0] * len(rarity)
    recent: list[bool] = []
    fresh: list[bool] = []
    firing, quiet = False, 0
    for i, r in enumerate(rarity):
        high = i >= rule.warm_up and r >= rule.threshold
        recent.append(high)
        fresh.append(rule.on != "fresh" or (high and episode[i] >= rule.threshold))
        if len(recent) > rule.n:
            del recent[0]
            del fresh[0]
        urgent = high and r >= rule.urgent and episode[i] >= rule.threshold
        if not firing and (urgent or (sum(recent) >= rule.k and any(fresh))):
            firing, quiet = True, 0
            out[i] = 1.0
        elif firing:
            quiet = 0 if high else quiet + 1
            if quiet >= rule.resolve_after:
                firing = False
    return out


def page_rows(corpus: Corpus, s: Scored, rule: Rule, windows: dict[str, Any]) -> list[FileRows]:
    """The rule's firing transitions as NAB detections (standard profile)."""
    return file_rows(corpus, [alerts(s, f, rule) for f in range(len(corpus))], windows, STANDARD)

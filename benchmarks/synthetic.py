"""Synthetic series of the shapes operators meet, each with its exact anomaly window.

Not NAB and not tuned on: a check that the detector and the default rule do what an
operator expects on shapes whose answer is known - a level shift, a variance change, a
slow leak, a missing daily peak, a counter reset, a flat line that starts moving, one of
a service's instances losing half its traffic - and stay quiet where nothing happened (a
gap in the data, a clean daily rhythm). Every
series is 14 days of 5-minute samples with a daily rhythm and noise; the anomaly starts
on day 10 and its window is the 3 hours from its start.

Rerun: `uv run python -m benchmarks.synthetic`
"""

from __future__ import annotations

import math
import random
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from processors.anomaly import AnomalySeries
from processors.rules.engine import RuleEngine
from schemas.anomaly import AnomalySpec
from schemas.rules import Rule, RuleSettings

T0 = datetime(2026, 1, 5, tzinfo=UTC)
STEP = timedelta(minutes=5)
PER_DAY = 288
DAYS = 14
START = 10 * PER_DAY + 100  # day 10, 08:20
WINDOW = 36  # 3 hours


@dataclass(frozen=True)
class Shape:
    name: str
    values: list[float]
    ats: list[datetime]
    anomaly: tuple[int, int] | None  # [first, last] row of the window; None: must stay quiet
    # a monotone counter as a scrape reads it: scored by a rule with `counter: true`
    counter: bool = False
    # another series of the same group (a second instance of the service, at the same
    # times): scored by a rule that groups by service; the rows are `values`' own
    partner: list[float] | None = None


def _base(
    seed: int, level: float = 100.0, amplitude: float = 30.0, noise: float = 3.0
) -> list[float]:
    rng = random.Random(seed)
    return [
        level + amplitude * math.sin(2 * math.pi * (i % PER_DAY) / PER_DAY) + rng.gauss(0, noise)
        for i in range(DAYS * PER_DAY)
    ]


def _times(n: int) -> list[datetime]:
    return [T0 + i * STEP for i in range(n)]


def _changed(seed: int, change: Callable[[int, float, random.Random], float]) -> list[float]:
    rng = random.Random(seed + 1000)
    return [change(i - START, v, rng) if i >= START else v for i, v in enumerate(_base(seed))]


def _counted(per_point: list[float], restart: int | None = None) -> list[float]:
    """A counter of `per_point` events a point, as scraped: cumulative, and from zero
    again at row `restart`."""
    out, total = [], 0.0
    for i, v in enumerate(per_point):
        total = max(0.0, v) if i == restart else total + max(0.0, v)
        out.append(total)
    return out


def shapes(seed: int = 1) -> list[Shape]:
    n = DAYS * PER_DAY
    window = (START, START + WINDOW - 1)
    ats = _times(n)
    out = [
        Shape("level shift up", _changed(seed, lambda k, v, r: v + 25.0), ats, window),
        Shape("level shift down", _changed(seed, lambda k, v, r: v - 25.0), ats, window),
        Shape("variance change", _changed(seed, lambda k, v, r: v + r.gauss(0, 15.0)), ats, window),
        # a leak: +0.5 a point, so it leaves the band (~3 sd of noise) within the window
        Shape("slow leak", _changed(seed, lambda k, v, r: v + 0.5 * k), ats, window),
        # the afternoon peak does not come: the value stays at the daily mean
        Shape(
            "missing daily peak",
            _changed(seed, lambda k, v, r: 100.0 + r.gauss(0, 3.0) if k < 4 * WINDOW else v),
            ats,
            window,
        ),
        # a request counter whose process restarts: the count starts over from zero, the
        # rate it counts goes on as before, so nothing happened to page about
        Shape("counter reset", _counted(_base(seed), restart=START), ats, None, counter=True),
        # the rate a counter counts drops (a quarter of the traffic is lost)
        Shape(
            "counter's rate drops",
            _counted(_changed(seed, lambda k, v, r: v - 25.0)),
            ats,
            window,
            counter=True,
        ),
        Shape(
            "flat line starts moving",
            [5.0 if i < START else 5.0 + random.Random(i).gauss(0, 1.0) for i in range(n)],
            ats,
            window,
        ),
        # no rows for 6 hours, then the values the rhythm has at that time of day
        Shape(
            "gap of 6 hours, then business as usual",
            [v for i, v in enumerate(_base(seed)) if not START <= i < START + 72],
            [at for i, at in enumerate(ats) if not START <= i < START + 72],
            None,
        ),
        Shape("clean daily rhythm", _base(seed), ats, None),
        # a service's small instance (100/s) loses half its traffic beside a large one
        # (1000/s): the service's total moves by 5%, within its usual swing
        Shape(
            "one instance of two loses half its traffic",
            _changed(seed, lambda k, v, r: v / 2.0),
            ats,
            window,
            partner=[10.0 * v for v in _base(seed + 50)],
        ),
        Shape(
            "two instances, nothing happens",
            _base(seed),
            ats,
            None,
            partner=[10.0 * v for v in _base(seed + 50)],
        ),
    ]
    return out


@dataclass(frozen=True)
class Outcome:
    shape: str
    pages: list[int]  # rows where the default rule fired, after the first day
    anomaly: tuple[int, int] | None

    @property
    def false_pages(self) -> int:
        """Pages where nothing had happened yet: before the anomaly, or on a quiet series."""
        return len([p for p in self.pages if self.anomaly is None or p < self.anomaly[0]])

    @property
    def first(self) -> int | None:
        """Points from the anomaly's start to its first page (None: never paged)."""
        if self.anomaly is None:
            return None
        after = [p - self.anomaly[0] for p in self.pages if p >= self.anomaly[0]]
        return min(after) if after else None

    @property
    def caught(self) -> bool:
        a = self.anomaly
        return a is not None and self.first is not None and self.first <= a[1] - a[0]

    @property
    def ok(self) -> bool:
        return self.false_pages == 0 and (self.anomaly is None or self.caught)


def run(shape: Shape, spec: AnomalySpec | None = None) -> Outcome:
    if shape.counter or shape.partner is not None:
        return _run_rule(shape, spec or AnomalySpec())
    d = AnomalySeries(spec or AnomalySpec())
    pages = [
        i
        for i, (v, at) in enumerate(zip(shape.values, shape.ats, strict=True))
        if d.update(v, at).transition == "firing" and i >= PER_DAY
    ]
    return Outcome(shape.name, pages, shape.anomaly)


def _run_rule(shape: Shape, spec: AnomalySpec) -> Outcome:
    """Through the rule engine, as a user configures it: `counter: true` for a counter,
    `group_by: [service]` for a service's instances."""
    metric = "requests_total" if shape.counter else "requests_per_second"
    rule = Rule.model_validate({
        "name": "requests",
        "signal": {"kind": "metric", "metric": metric, "counter": shape.counter},
        "group_by": ["service"],
        "anomaly": spec.model_dump(),
    })  # fmt: skip
    engine = RuleEngine([rule], RuleSettings(allowed_lateness=timedelta(0)))
    series = [("a", shape.values), ("b", shape.partner or [])]
    firing: list[float] = []
    for i, at in enumerate(shape.ats):
        for instance, values in series:
            if values:
                labels = {"service": "api", "instance": instance}
                t = at.timestamp()
                engine.process_metric(metric, labels, values[i], t, route=instance.encode())
        firing += [a.starts_at.timestamp() for a in engine.advance() if a.status == "firing"]
    rows = {at.timestamp(): i for i, at in enumerate(shape.ats)}
    pages = [rows[t] for t in firing if rows[t] >= PER_DAY]
    return Outcome(shape.name, pages, shape.anomaly)


def main(argv: Sequence[str] = ()) -> int:
    outcomes = [run(s) for seed in (1, 2, 3) for s in shapes(seed)]
    by_shape: dict[str, list[Outcome]] = {}
    for o in outcomes:
        by_shape.setdefault(o.shape, []).append(o)
    print(
        "default rule, 3 seeds per shape: caught in its 3-hour window, points to the "
        "first page (None: never), false pages (before the anomaly or on a quiet series), "
        "pages after the first"
    )
    for name, os_ in by_shape.items():
        caught = f"{sum(o.caught for o in os_)}/3" if os_[0].anomaly else "  -"
        first = [o.first for o in os_] if os_[0].anomaly else ""
        repeats = sum(
            max(0, len([p for p in o.pages if o.anomaly and p >= o.anomaly[0]]) - 1) for o in os_
        )
        print(
            f"  {name:44} caught {caught}  false {sum(o.false_pages for o in os_)}  "
            f"repeats {repeats}  {first}"
        )
    ok = sum(o.ok for o in outcomes)
    print(f"score: {ok}/{len(outcomes)} series as an operator expects")
    print("rerun: uv run python -m benchmarks.synthetic")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

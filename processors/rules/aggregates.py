"""Per-window accumulators. Plain classes with __slots__: they sit on the hot path.

Each can dump its state to JSON-able data and load it back, for checkpoints.
"""

from __future__ import annotations

from typing import Any

from ddsketch import DDSketch

QUANTILE_ACCURACY = 0.01  # 1% relative error: p95 of 300 ms is reported within 3 ms


class Accumulator:
    __slots__ = ()

    def add(self, value: float, hit: bool = True) -> None:
        raise NotImplementedError

    def result(self) -> float | None:
        raise NotImplementedError

    def samples(self) -> int:
        raise NotImplementedError

    def dump(self) -> Any:
        raise NotImplementedError

    def load(self, data: Any) -> None:
        raise NotImplementedError


class Moments(Accumulator):
    """count, sum, min, max, last: enough for avg/min/max/sum/count/last/rate."""

    __slots__ = ("count", "kind", "last", "max", "min", "seconds", "sum")

    def __init__(self, kind: str, seconds: float) -> None:
        self.kind = kind
        self.seconds = seconds
        self.count = 0
        self.sum = 0.0
        self.min = float("inf")
        self.max = float("-inf")
        self.last = 0.0

    def add(self, value: float, hit: bool = True) -> None:
        self.count += 1
        self.sum += value
        if value < self.min:
            self.min = value
        if value > self.max:
            self.max = value
        self.last = value

    def samples(self) -> int:
        return self.count

    def result(self) -> float | None:
        if self.count == 0:
            return None
        k = self.kind
        if k == "avg":
            return self.sum / self.count
        if k == "min":
            return self.min
        if k == "max":
            return self.max
        if k == "sum":
            return self.sum
        if k == "count":
            return float(self.count)
        if k == "rate":
            return self.sum / self.seconds
        return self.last

    def dump(self) -> Any:
        return [self.count, self.sum, self.min, self.max, self.last]

    def load(self, data: Any) -> None:
        self.count, self.sum, self.min, self.max, self.last = data


class Ratio(Accumulator):
    """hits / total, e.g. 5xx responses over all responses."""

    __slots__ = ("hits", "total")

    def __init__(self) -> None:
        self.hits = 0
        self.total = 0

    def add(self, value: float, hit: bool = True) -> None:
        self.total += 1
        if hit:
            self.hits += 1

    def samples(self) -> int:
        return self.total

    def result(self) -> float | None:
        return self.hits / self.total if self.total else None

    def dump(self) -> Any:
        return [self.hits, self.total]

    def load(self, data: Any) -> None:
        self.hits, self.total = data


class Quantile(Accumulator):
    """A quantile through DDSketch: bounded memory and relative-error guarantees."""

    __slots__ = ("q", "sketch")

    def __init__(self, q: float) -> None:
        self.q = q
        self.sketch = DDSketch(relative_accuracy=QUANTILE_ACCURACY)

    def add(self, value: float, hit: bool = True) -> None:
        self.sketch.add(value)

    def samples(self) -> int:
        return int(self.sketch.count)

    def result(self) -> float | None:
        if self.sketch.count == 0:
            return None
        v = self.sketch.get_quantile_value(self.q)
        return None if v is None else float(v)

    def dump(self) -> Any:
        # the stores' exact fields, not the protobuf form: the proto re-derives the
        # mapping's gamma and a restored sketch would answer 1e-12 differently, which
        # breaks byte-identical replays
        sk = self.sketch
        return [
            sk._zero_count,
            sk._count,
            sk._min,
            sk._max,
            sk._sum,
            _dump_store(sk._store),
            _dump_store(sk._negative_store),
        ]

    def load(self, data: Any) -> None:
        sk = self.sketch = DDSketch(relative_accuracy=QUANTILE_ACCURACY)
        sk._zero_count, sk._count, sk._min, sk._max, sk._sum, pos, neg = data
        _load_store(sk._store, pos)
        _load_store(sk._negative_store, neg)


_STORE_FIELDS = ("count", "min_key", "max_key", "offset", "bins")


def _dump_store(store: Any) -> list[Any]:
    return [getattr(store, f) for f in _STORE_FIELDS]


def _load_store(store: Any, data: list[Any]) -> None:
    for field, value in zip(_STORE_FIELDS, data, strict=True):
        setattr(store, field, list(value) if field == "bins" else value)

"""Per-window accumulators. Plain classes with __slots__: they sit on the hot path.

One class per aggregation, holding only what that aggregation needs: an engine
holds one accumulator per open window per series, so every slot and every boxed
float is paid tens of thousands of times. Each can dump its state to JSON-able
data and load it back, for checkpoints.
"""

from __future__ import annotations

from math import ceil, log
from typing import Any

from ddsketch.ddsketch import BaseDDSketch
from ddsketch.mapping import LogarithmicMapping
from ddsketch.store import CollapsingLowestDenseStore, DenseStore

QUANTILE_ACCURACY = 0.01  # 1% relative error: p95 of 300 ms is reported within 3 ms
# bins kept per sketch: at 1% accuracy, 1024 bins span values from x to ~x * 7e8, so a
# latency sketch never collapses in practice; if it does, the lowest bins merge and the
# high quantiles alerts care about keep their accuracy
QUANTILE_BIN_LIMIT = 1024
# the store grows in chunks; ddsketch's default (128 bins) costs ~1 KiB per sketch even
# for a narrow latency band
QUANTILE_CHUNK = 16
# samples a quantile pane keeps as plain floats before it builds a sketch
QUANTILE_BUFFER = 16


class Accumulator:
    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0

    @classmethod
    def first(cls, value: float, hit: bool) -> Accumulator:
        """A new accumulator holding one sample: what `cls()` then `add` give, in one call
        (a pane is started this way per series and rule every step)."""
        acc = cls()
        acc.add(value, hit)
        return acc

    def add(self, value: float, hit: bool) -> None:
        raise NotImplementedError

    def result(self) -> float | None:
        raise NotImplementedError

    @classmethod
    def combine(cls, parts: list[Any]) -> float | None:
        """The result over several panes (consecutive slices of one window), in event-time
        order; every part holds at least one sample."""
        raise NotImplementedError

    def dump(self) -> Any:
        raise NotImplementedError

    def load(self, data: Any) -> None:
        raise NotImplementedError


class Avg(Accumulator):
    __slots__ = ("sum",)

    def __init__(self) -> None:
        self.count = 0
        self.sum = 0.0

    @classmethod
    def first(cls, value: float, hit: bool) -> Accumulator:
        acc = cls.__new__(cls)
        acc.count = 1
        acc.sum = 0.0 + value  # as add() from 0.0 (-0.0 becomes 0.0)
        return acc

    def add(self, value: float, hit: bool) -> None:
        self.count += 1
        self.sum += value

    def result(self) -> float | None:
        return self.sum / self.count if self.count else None

    @classmethod
    def combine(cls, parts: list[Any]) -> float | None:
        total, count = 0.0, 0
        for p in parts:  # a loop, not two sum(genexpr): this runs per series per window
            total += p.sum
            count += p.count
        return float(total / count)

    def dump(self) -> Any:
        return [self.count, self.sum]

    def load(self, data: Any) -> None:
        self.count, self.sum = int(data[0]), float(data[1])


class Sum(Avg):
    """sum, and `rate` (the rule divides the sum of counter increases by the window)."""

    __slots__ = ()

    def result(self) -> float | None:
        return self.sum if self.count else None

    @classmethod
    def combine(cls, parts: list[Any]) -> float | None:
        total = 0.0
        for p in parts:
            total += p.sum
        return float(total)


class Count(Accumulator):
    __slots__ = ()

    def add(self, value: float, hit: bool) -> None:
        self.count += 1

    def result(self) -> float | None:
        return float(self.count) if self.count else None

    @classmethod
    def combine(cls, parts: list[Any]) -> float | None:
        return float(sum(p.count for p in parts))

    def dump(self) -> Any:
        return [self.count]

    def load(self, data: Any) -> None:
        self.count = int(data[0])


class Extreme(Accumulator):
    """min, max or last: one retained value (`last` = the latest to arrive)."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.count = 0
        self.value = 0.0

    @classmethod
    def first(cls, value: float, hit: bool) -> Accumulator:
        acc = cls.__new__(cls)
        acc.count = 1
        acc.value = value  # min, max and last of one sample alike
        return acc

    def result(self) -> float | None:
        return self.value if self.count else None

    def dump(self) -> Any:
        return [self.count, self.value]

    def load(self, data: Any) -> None:
        self.count, self.value = int(data[0]), float(data[1])


class Max(Extreme):
    __slots__ = ()

    def add(self, value: float, hit: bool) -> None:
        if self.count == 0 or value > self.value:
            self.value = value
        self.count += 1

    @classmethod
    def combine(cls, parts: list[Any]) -> float | None:
        return float(max(p.value for p in parts))


class Min(Extreme):
    __slots__ = ()

    def add(self, value: float, hit: bool) -> None:
        if self.count == 0 or value < self.value:
            self.value = value
        self.count += 1

    @classmethod
    def combine(cls, parts: list[Any]) -> float | None:
        return float(min(p.value for p in parts))


class Last(Extreme):
    __slots__ = ()

    def add(self, value: float, hit: bool) -> None:
        self.value = value
        self.count += 1

    @classmethod
    def combine(cls, parts: list[Any]) -> float | None:
        return float(parts[-1].value)  # the latest pane's latest sample


class Ratio(Accumulator):
    """hits / total, e.g. 5xx responses over all responses."""

    __slots__ = ("hits",)

    def __init__(self) -> None:
        self.count = 0
        self.hits = 0

    @classmethod
    def first(cls, value: float, hit: bool) -> Accumulator:
        acc = cls.__new__(cls)
        acc.count = 1
        acc.hits = 1 if hit else 0
        return acc

    def add(self, value: float, hit: bool) -> None:
        self.count += 1
        if hit:
            self.hits += 1

    def result(self) -> float | None:
        return self.hits / self.count if self.count else None

    @classmethod
    def combine(cls, parts: list[Any]) -> float | None:
        hits, count = 0, 0
        for p in parts:
            hits += p.hits
            count += p.count
        return float(hits / count)

    def dump(self) -> Any:
        return [self.hits, self.count]

    def load(self, data: Any) -> None:
        self.hits, self.count = int(data[0]), int(data[1])


def new_mapping() -> LogarithmicMapping:
    """One mapping per rule, shared by all its sketches (it is immutable)."""
    return LogarithmicMapping(QUANTILE_ACCURACY)


class Quantile(Accumulator):
    """A quantile through DDSketch: bounded memory and relative-error guarantees.

    A pane with few samples (a series scraped every 10 s has 3 in a 30 s pane) keeps
    them in a short list and builds its sketch only past QUANTILE_BUFFER samples: the
    answer is the same (a sketch's bins do not depend on when values were added), and
    a few floats cost a fraction of a sketch.
    """

    __slots__ = ("mapping", "q", "sketch", "values")

    def __init__(self, q: float, mapping: LogarithmicMapping) -> None:
        self.count = 0
        self.q = q
        self.mapping = mapping
        self.values: list[float] | None = []
        self.sketch: BaseDDSketch | None = None

    @classmethod
    def started(cls, q: float, mapping: LogarithmicMapping, value: float, hit: bool) -> Quantile:
        """Quantile(q, mapping) holding one sample (first() with the rule's parameters)."""
        acc = cls.__new__(cls)
        acc.count = 1
        acc.q = q
        acc.mapping = mapping
        acc.values = [value]  # one value is within the buffer: no sketch yet
        acc.sketch = None
        return acc

    def add(self, value: float, hit: bool) -> None:
        self.count += 1
        values = self.values
        if values is None:
            assert self.sketch is not None
            _add(self.sketch, value)
            return
        values.append(value)
        if len(values) > QUANTILE_BUFFER:
            self.sketch = _sketch_of(self.mapping, values)
            self.values = None

    def result(self) -> float | None:
        if self.count == 0:
            return None
        if self.values is not None:
            exact = _quantile_of_values(self.mapping, self.q, self.values)
            if exact is not None:
                return exact
        sk = self.sketch if self.values is None else _sketch_of(self.mapping, self.values)
        assert sk is not None
        v = sk.get_quantile_value(self.q)
        return None if v is None else float(v)

    @classmethod
    def combine(cls, parts: list[Any]) -> float | None:
        if len(parts) == 1:
            return parts[0].result()  # type: ignore[no-any-return]
        first = parts[0]
        if all(p.values is not None for p in parts):
            values = [v for p in parts for v in p.values]
            exact = _quantile_of_values(first.mapping, first.q, values)
            if exact is not None:
                return exact
        merged = _new_sketch(first.mapping)
        # a transient sketch: its own negative store, so merging never writes the shared one
        merged._negative_store = DenseStore(chunk_size=QUANTILE_CHUNK)
        for p in parts:
            if p.values is not None:
                for value in p.values:
                    merged.add(value)
            else:
                merged.merge(p.sketch)
        v = merged.get_quantile_value(first.q)
        return None if v is None else float(v)

    def dump(self) -> Any:
        if self.values is not None:
            return [self.count, "values", self.values]
        # the stores' exact fields, not the protobuf form: the proto re-derives the
        # mapping's gamma and a restored sketch would answer 1e-12 differently, which
        # breaks byte-identical replays
        sk = self.sketch
        assert sk is not None
        return [
            self.count,
            "sketch",
            [
                sk._zero_count,
                sk._count,
                sk._min,
                sk._max,
                sk._sum,
                _dump_store(sk._store),
                _dump_store(sk._negative_store),
            ],
        ]

    def load(self, data: Any) -> None:
        self.count, form, body = int(data[0]), data[1], data[2]
        if form == "values":
            self.values, self.sketch = [float(v) for v in body], None
            return
        sk = self.sketch = _new_sketch(self.mapping)
        self.values = None
        sk._zero_count, sk._count, sk._min, sk._max, sk._sum, pos, neg = body
        _load_store(sk._store, pos)
        if neg[0]:
            sk._negative_store = DenseStore(chunk_size=QUANTILE_CHUNK)
            _load_store(sk._negative_store, neg)


def _quantile_of_values(mapping: LogarithmicMapping, q: float, values: list[float]) -> float | None:
    """What a sketch holding exactly `values` answers for quantile q, without building it
    (a sketch per series per window close was a third of the engine's time).

    The same arithmetic as BaseDDSketch.get_quantile_value with unit weights: the bin
    keys through the very mapping, the rank q * (count - 1), the first bin whose running
    count exceeds it, and that bin's value through the mapping. None (the caller builds
    the sketch) whenever the shortcut would not be exactly the sketch: a value at or
    below the mapping's smallest positive value (zero and negative bins), or keys
    spread wide enough that the bounded store could collapse bins.
    """
    smallest = mapping.min_possible
    keys = []
    if type(mapping) is LogarithmicMapping:
        # LogarithmicMapping.key's own expression, inline: two Python calls per value less
        # (a window close keys every buffered value of every pane it spans)
        multiplier, offset = mapping._multiplier, mapping._offset
        for v in values:
            if not v > smallest:
                return None
            keys.append(int(ceil(log(v, 2) * multiplier) + offset))
    else:
        key = mapping.key
        for v in values:
            if not v > smallest:
                return None
            keys.append(key(v))
    keys.sort()
    if keys[-1] - keys[0] >= QUANTILE_BIN_LIMIT // 2:
        return None
    rank = q * (float(len(keys)) - 1.0)
    return float(mapping.value(keys[int(rank)]))


def _add(sk: BaseDDSketch, value: float) -> None:
    if value < 0.0 and sk._negative_store is _NO_NEGATIVES:
        sk._negative_store = DenseStore(chunk_size=QUANTILE_CHUNK)
    sk.add(value)


def _sketch_of(mapping: LogarithmicMapping, values: list[float]) -> BaseDDSketch:
    sk = _new_sketch(mapping)
    for value in values:
        _add(sk, value)
    return sk


def _new_sketch(mapping: LogarithmicMapping) -> BaseDDSketch:
    positive = CollapsingLowestDenseStore(QUANTILE_BIN_LIMIT)
    # ddsketch 3.0 drops chunk_size in this store's constructor: set it afterwards
    positive.chunk_size = QUANTILE_CHUNK
    return BaseDDSketch(
        mapping=mapping, store=positive, negative_store=_NO_NEGATIVES, zero_count=0.0
    )


# latencies and most gauges are never negative: sketches share one empty negative store,
# read-only, and get their own on their first negative value (Quantile.add), which
# saves a store object per sketch
_NO_NEGATIVES = DenseStore(chunk_size=QUANTILE_CHUNK)


_STORE_FIELDS = ("count", "min_key", "max_key", "offset", "bins")


def _dump_store(store: Any) -> list[Any]:
    out = [getattr(store, f) for f in _STORE_FIELDS]
    if isinstance(store, CollapsingLowestDenseStore):
        out.append(store.is_collapsed)
    return out


def _load_store(store: Any, data: list[Any]) -> None:
    for field, value in zip(_STORE_FIELDS, data, strict=False):
        setattr(store, field, list(value) if field == "bins" else value)
    if isinstance(store, CollapsingLowestDenseStore) and len(data) > len(_STORE_FIELDS):
        store.is_collapsed = bool(data[len(_STORE_FIELDS)])

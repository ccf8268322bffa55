"""The disorder property with per-series watermarks (`watermark: series`, the default).

With `watermark: partition` a sample that trails the newest event time by less than
the allowed lateness is always folded in, so any such disorder yields the transitions
of the sorted input (test_properties.py). Per-series watermarks close a window before
that, once every live series has passed it, so an out-of-order sample may arrive for
a window already decided. What holds instead, for every arrival order:

1. each sample is either folded in whole or refused as late (to the `late` topic),
   nothing in between: the transitions are exactly those of the sorted input without
   the samples refused as late; disorder changes nothing else;
2. series whose samples each arrive in their own order lose nothing, whatever the
   interleaving of the series, as long as none falls more than its own sampling
   interval behind another (two intervals of silence make a series idle, and its
   windows then close without it);
3. which samples are refused and which transitions come out depend neither on the
   batch boundaries nor on a checkpoint and restore anywhere in the stream.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from processors.rules.engine import LATE, RuleEngine
from schemas import encode
from tests.unit.rules.test_properties import GRACE, RULES, SETTINGS, _timed, samples

Sample = tuple[str, float, float]


def _feed(e: RuleEngine, stream: list[Sample], cuts: set[int], out: list[bytes],
          late: list[int], start: int = 0) -> None:  # fmt: skip
    for i, (host, v, t) in enumerate(stream, start=start):
        if e.process_metric("m", {"host": host}, v, t) == LATE:
            late.append(i)
        if i in cuts:
            out += [encode(a) for a in e.advance()]


def _run(stream: list[Sample], cuts: set[int] | None = None) -> tuple[list[bytes], list[int]]:
    e = RuleEngine(RULES, SETTINGS)
    out: list[bytes] = []
    late: list[int] = []
    _feed(e, stream, cuts or set(), out, late)
    return out + [encode(a) for a in e.advance()] + [encode(a) for a in e.flush()], late


def _shuffled(stream: list[tuple[str, float, int]], rnd: Any) -> list[Sample]:
    """The stream with each sample delayed by up to the grace (as the partition-mode
    property does)."""
    return sorted(_timed(stream), key=lambda s: s[2] + rnd.uniform(0, GRACE - 1))


@settings(max_examples=80, deadline=None)
@given(samples, st.randoms(use_true_random=False))
def test_disorder_only_ever_costs_the_samples_refused_as_late(
    stream: list[tuple[str, float, int]], rnd: Any
) -> None:
    shuffled = _shuffled(stream, rnd)
    out, late = _run(shuffled)
    kept = [s for i, s in enumerate(shuffled) if i not in set(late)]
    in_order = sorted(kept, key=lambda s: s[2])
    expected, none_late = _run(in_order)
    assert none_late == []  # sorted input is never late
    assert out == expected


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(min_value=0, max_value=100).map(float), st.integers(0, 2)),
        min_size=1,
        max_size=60,
    ),
    st.randoms(use_true_random=False),
)
def test_series_in_their_own_order_lose_nothing_however_they_interleave(
    scrapes: list[tuple[float, int]], rnd: Any
) -> None:
    # three hosts scraped every 5 s; within the run of one scrape and across scrapes the
    # hosts interleave freely, each host's own samples stay in order
    hosts = ["a", "b", "c"]
    per_host = {
        h: [(h, (v + 7 * j) % 101, 1_767_225_600.0 + 5 * k) for k, (v, _) in enumerate(scrapes)]
        for j, h in enumerate(hosts)
    }
    merged: list[Sample] = []
    cursors = dict.fromkeys(hosts, 0)
    while any(cursors[h] < len(per_host[h]) for h in hosts):
        # a host may run ahead of the others by at most one scrape
        lowest = min(cursors[h] for h in hosts)
        ready = [h for h in hosts if cursors[h] < len(per_host[h]) and cursors[h] <= lowest + 1]
        h = rnd.choice(ready)
        merged.append(per_host[h][cursors[h]])
        cursors[h] += 1
    out, late = _run(merged)
    assert late == []
    assert out == _run(sorted(merged, key=lambda s: (s[2], s[0])))[0]


@settings(max_examples=60, deadline=None)
@given(samples, st.randoms(use_true_random=False),
       st.sets(st.integers(min_value=0, max_value=150)))  # fmt: skip
def test_batch_boundaries_change_neither_the_late_samples_nor_the_transitions(
    stream: list[tuple[str, float, int]], rnd: Any, cuts: set[int]
) -> None:
    shuffled = _shuffled(stream, rnd)
    assert _run(shuffled, cuts) == _run(shuffled)


@settings(max_examples=60, deadline=None)
@given(samples, st.randoms(use_true_random=False), st.integers(min_value=0, max_value=150))
def test_a_checkpoint_anywhere_in_a_disordered_stream_continues_exactly(
    stream: list[tuple[str, float, int]], rnd: Any, at: int
) -> None:
    shuffled = _shuffled(stream, rnd)
    cuts = set(range(0, 200, 7))
    whole = _run(shuffled, cuts)
    out: list[bytes] = []
    late: list[int] = []
    first = RuleEngine(RULES, SETTINGS)
    _feed(first, shuffled[:at], cuts, out, late)
    second = RuleEngine(RULES, SETTINGS)
    second.load(first.dump())
    _feed(second, shuffled[at:], cuts, out, late, start=at)
    out += [encode(a) for a in second.advance()] + [encode(a) for a in second.flush()]
    assert (out, late) == whole

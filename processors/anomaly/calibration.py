"""Surprise -> calibrated score in [0, 1] that means the same on every series.

A detector measures how surprising a point is in its own units (a z-like distance
from its prediction). This module turns that raw surprise into a tail probability
against the series' own long-run distribution of surprises (Numenta's anomaly
likelihood, over exponentially weighted estimates instead of a window, so the state
is a few hundred bytes), and maps the tail probability to a score:

    score = D / (D + 7),  D = -log10(tail probability)

so 0.3 means "about 1 in 1,000", 0.5 means 1 in 10^7, and the score never saturates
at exactly 1.0 (a benchmark threshold sweep can always rank two points). That is per
point; the detectors then rate it per unit of time with `shifted` (see timescale.py).

The tail probability is empirical first: an exponentially weighted histogram of the
series' past surprises (29 bins, ~3,000 points of memory) says how often a surprise
this large has happened before. Surprises are heavy-tailed on real metrics (tweet
volumes, latency, CPU with a nightly job): a Gaussian fitted to them calls every
recurring spike a 1-in-10^9 event, the histogram calls a daily spike 1 in 288. What
the histogram has never seen is extrapolated by the Gaussian tail, weighted by a
prior share UNSEEN of surprises beyond its reach:

    tail = (1 - UNSEEN) * histogram tail + UNSEEN * Gaussian tail

so a never-seen surprise scores at least -log10(UNSEEN) = 3 decades, and more the
further it lies beyond the Gaussian.

Episode score: a point scores high only if it is a quarter of a decade (~1.8x) rarer
than every point of the episode's recent past - the current and the previous stretch of
70 points, so a surprise stays in it for 70 to 139 points whatever its size - and is
damped otherwise. A long anomaly then reads as one detection, not dozens - what a
ranking or a threshold sweep needs - and so does a burst whose points each come out a
hair rarer than the last. The past is a bounded window, not a decaying peak: a peak
decaying by a factor per point hid what followed for longer the larger it was (a
1-in-10^30 spike ~225 points, a 1-in-10^3 one ~45), while the aftershocks of a burst
fired again as soon as the peak had decayed under them; how rare a surprise was says
nothing about how long its episode lasts (NAB's CAD OSE reports a point only when it
beats every score of its last restPeriod points, for the same reason).
Alerting uses the undamped score with k-of-n debouncing instead.
"""

from __future__ import annotations

import math
import struct
from array import array

LONG = 0.0003  # distribution of raw surprises: ~3,000 points of memory
UNSEEN = 1e-3  # prior share of surprises beyond what the histogram has seen
BINS_PER_ROOT = 4.0  # bin k holds surprises u with k <= 4 * sqrt(u) < k + 1
N_BINS = 29  # 4 * sqrt(50) = 28.3: the detectors cap surprises at 50
STRETCH = 70  # episode: a surprise is remembered 70-139 points (the stretch it is in + the next)
DAMPING = 0.3  # a point no clearer than its episode's recent peak keeps 30% of its score
PEAK_MARGIN = 0.25  # decades a point must add to the episode's recent peak to be news again
DECADES = 7.0  # score 0.3 = tail probability 1e-3, 0.5 = 1e-7
LAG = 5  # a surprise joins the histogram 5 points late: after it left a k-of-5 debounce
SD_FLOOR = 0.1  # in units of the detector's raw surprise (a z-distance)
MIN_POINTS = 10  # no calibration before a handful of surprises were seen
SETTLE = 20  # detectors feed no surprise before their own spread estimate settles
_RESCALE = 1e100  # histogram weights grow by 1/(1 - LONG) a point: renormalised here
_UNSEEN_DECADES = -math.log10(UNSEEN)
_PLAIN = math.ceil(1.0 / LONG) - 1  # from this point on, the plain mean's rate is below LONG
_KEEP, _GROW = 1.0 - LONG, 1.0 / (1.0 - LONG)
_GAUSS_NEGLIGIBLE = 100.0 * UNSEEN
_LN10 = math.log(10.0)
_sqrt, _floor, _log10, _erfc = math.sqrt, math.floor, math.log10, math.erfc
_SEEN_SHARE = 1.0 - UNSEEN
_SQRT2 = math.sqrt(2.0)
_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)
_FORMAT = f"<q4d{N_BINS}d{LAG}d"  # n, long_m, long_v, weight, mass, bins, pending bins
_EPISODE = "<2dq"  # previous stretch's peak, current stretch's peak, points in it


def log10_tail(u: float) -> float:
    """-log10 P(N(0,1) > u), exact for small u and asymptotic where erfc underflows."""
    if u < 5.0:
        return -math.log10(max(0.5 * math.erfc(u / _SQRT2), 1e-300))
    return (0.5 * u * u + math.log(u) + _LOG_SQRT_2PI) / _LN10


def shifted(score: float, decades: float) -> float:
    """The score of a tail probability `decades` less rare (more, if negative)."""
    if score <= 0.0:
        return 0.0
    d = DECADES * score / (1.0 - score) - decades
    return d / (d + DECADES) if d > 0.0 else 0.0


class Calibrator:
    """Per-series calibration state: a histogram of past surprises and a Gaussian."""

    __slots__ = ("bins", "long_m", "long_v", "mass", "n", "pending", "top", "weight")

    def __init__(self) -> None:
        self.n = 0
        self.long_m = 0.0
        self.long_v = 0.0
        # bins[k] holds sum of weight_t over past surprises in bin k; weight_t grows by
        # 1/(1 - rate) each point, which decays every older entry without touching it
        self.weight = 1.0
        self.mass = 0.0
        self.bins = array("d", bytes(8 * N_BINS))
        # the bins of the last LAG surprises, not yet in the histogram (-1: empty)
        self.pending = [-1] * LAG
        self.top = 0  # bins from here up have never been filled (not checkpointed: derived)

    def calibrate(self, raw: float) -> float:
        """Score a raw surprise (>= 0) against the history before it, then learn it."""
        x = BINS_PER_ROOT * _sqrt(raw)
        k = _floor(x)  # (x >= 0: int(x), but without the type call)
        if k >= N_BINS:
            k, x = N_BINS - 1, float(N_BINS)
        bins = self.bins
        n = self.n
        m = self.long_m
        score = 0.0
        if raw > m and n >= MIN_POINTS + LAG:
            # (a surprise no larger than the mean surprise is never rare - its tail is
            # around a third or more, a score under ~0.07 - so it is not priced: half the
            # points skip the histogram sum)
            # the part of bin k above raw counts as if spread evenly over the bin; the sum
            # stops at the highest bin ever filled (the empty ones above add exactly 0.0)
            seen = (sum(bins[k + 1 : self.top]) + bins[k] * (k + 1 - x)) / self.mass
            if seen >= _GAUSS_NEGLIGIBLE:
                # the Gaussian term adds < 0.005 decades here: not worth an erfc
                decades = -_log10(_SEEN_SHARE * seen)
            else:
                # a floor on the spread of surprises: after a flat or perfectly
                # predictable start, the first real surprise is very unlikely, not
                # undefined
                sd = _sqrt(self.long_v)
                u = (raw - m) / (sd if sd > SD_FLOOR else SD_FLOOR)
                if seen > 0.0:
                    if u < 5.0:  # 10 ** -log10_tail(u), without the two calls
                        gauss = 0.5 * _erfc(u / _SQRT2)
                        gauss = 10.0 ** _log10(gauss if gauss > 1e-300 else 1e-300)
                    else:
                        gauss = 10.0 ** -log10_tail(u)
                    decades = -_log10(_SEEN_SHARE * seen + UNSEEN * gauss)
                else:
                    decades = _UNSEEN_DECADES + log10_tail(u)
            score = decades / (decades + DECADES) if decades > 0.0 else 0.0
        # a plain running mean/variance until it covers LONG's horizon, so the early
        # estimates are not biased towards zero (which would flag ordinary noise)
        # (rate * d * d is (rate * d) * d: the product is computed once)
        d = raw - m
        if n >= _PLAIN:
            step = LONG * d
            self.long_m = m + step
            self.long_v = _KEEP * (self.long_v + step * d)
            weight = self.weight * _GROW
        else:
            rate = 1.0 / (n + 1)
            step = rate * d
            self.long_m = m + step
            self.long_v = (1.0 - rate) * (self.long_v + step * d)
            weight = self.weight / (1.0 - rate) if n else self.weight
        # the histogram learns a surprise LAG points late: the points of one episode do
        # not make each other "seen before" (a 3-point spike stays rare for all 3).
        # pending holds bin numbers (-1: empty)
        pending = self.pending
        j = n % LAG
        old = pending[j]
        pending[j] = k
        if old >= 0:
            bins[old] += weight
            self.mass += weight
            if old >= self.top:
                self.top = old + 1
        if weight > _RESCALE:
            f = 1.0 / weight
            self.bins = array("d", (b * f for b in bins))
            self.mass *= f
            weight = 1.0
        self.weight = weight
        self.n = n + 1
        return score

    def dump(self) -> bytes:
        return struct.pack(
            _FORMAT,
            self.n,
            self.long_m,
            self.long_v,
            self.weight,
            self.mass,
            *self.bins,
            *map(float, self.pending),
        )

    @classmethod
    def load(cls, data: bytes, offset: int = 0) -> tuple[Calibrator, int]:
        n, m, v, w, mass, *numbers = struct.unpack_from(_FORMAT, data, offset)
        c = cls()
        c.n, c.long_m, c.long_v, c.weight, c.mass = int(n), m, v, w, mass
        c.bins = array("d", numbers[:N_BINS])
        c.pending = [int(b) for b in numbers[N_BINS:]]
        c.top = max((k + 1 for k, b in enumerate(c.bins) if b), default=0)
        return c, offset + struct.calcsize(_FORMAT)


class Episode:
    """Damps re-detections: only a point clearly rarer than its last 70-139 points scores high."""

    __slots__ = ("current", "k", "previous")

    def __init__(self) -> None:
        self.previous = 0.0  # the largest calibrated score of the last full stretch
        self.current = 0.0  # ... of the stretch under way, k points so far
        self.k = 0

    def step(self, calibrated: float) -> float:
        current = self.current
        peak = self.previous if self.previous > current else current
        if calibrated > current:
            current = calibrated
        k = self.k + 1
        if k == STRETCH:
            self.previous, current, k = current, 0.0, 0
        self.current, self.k = current, k
        if calibrated > peak:
            # a peak barely above the last is the same episode going on (a burst whose
            # points come out a little rarer one after the other), not a new finding
            bar = DECADES * peak / (1.0 - peak) + PEAK_MARGIN if peak < 1.0 else math.inf
            if calibrated > bar / (bar + DECADES):
                return calibrated
        return calibrated * DAMPING

    def dump(self) -> bytes:
        return struct.pack(_EPISODE, self.previous, self.current, self.k)

    @classmethod
    def load(cls, data: bytes, offset: int = 0) -> tuple[Episode, int]:
        e = cls()
        e.previous, e.current, k = struct.unpack_from(_EPISODE, data, offset)
        e.k = int(k)
        return e, offset + struct.calcsize(_EPISODE)

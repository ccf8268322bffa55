"""Alert storms: a group's members beyond a bound, summarised in bounded bytes.

A group tracks its first alerts one by one (`Member`), up to MAX_TRACKED of them and
MEMBER_BYTES of their estimated JSON. Every alert beyond that is summarised in the
group's `Digest`, whose size does not depend on how many alerts it summarises:

- `sketch`: one bit per hash bucket of a fingerprint (blake2b, SKETCH_BITS buckets), set
  while a summarised alert of that bucket fires. A firing alert whose bit is set is a
  repeat; a resolved alert whose bit is set resolves it. Two summarised alerts that
  share a bucket are one to it: the second one's firing is taken for a repeat, and
  the first of the two to resolve clears the bucket for both (the other's next firing
  sets it again).
- `fired`, `resolved`: the sketch's bits set and cleared, so `fired - resolved` is its
  set bits; the count of alerts firing now is estimated from them by linear counting
  (`firing_estimate`), which puts back the alerts that shared a bucket.
- `registers`: a HyperLogLog of every summarised fingerprint that fired (2^HLL_P
  one-byte registers), for the number of distinct summarised alerts
  (`distinct_estimate`, Ertl's improved estimator: no empirical bias tables, about
  1% standard error at every size).
- `by_label`: per label key (the first MAX_KEYS keys seen), counts per value (the
  first MAX_VALUES values, cut to MAX_VALUE_CHARS), the rest under `other`; counted
  when an alert starts firing.
- `sample`: the first SAMPLE summarised alerts (labels cut), their status kept.

Every operation here is O(labels of the alert), never O(alerts in the group).
"""

from __future__ import annotations

import base64
import hashlib
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson

from schemas.alerts import Alert

MAX_TRACKED = 100  # alerts of a group tracked one by one
MEMBER_BYTES = 256 * 1024  # estimated JSON of the tracked members, at most
MEMBER_FIXED = 512  # a member's JSON beyond its strings (field names, numbers, times)
TRANSITION_BYTES = 40  # one remembered flip: an ISO timestamp in JSON
SKETCH_BITS = 1 << 17  # 16 KB of buckets
HLL_P = 14  # 16 KB of HyperLogLog registers: 1.04 / sqrt(2^14) = 0.8% standard error
HLL_Q = 64 - HLL_P  # hash bits left for the rank
MAX_KEYS = 16
MAX_VALUES = 10
MAX_VALUE_CHARS = 128
SAMPLE = 10
SAMPLE_LABELS = 16
EVERY = timedelta(seconds=10)  # a storm's digest is reported on the ledger at most this often


@dataclass
class Tally:
    values: dict[str, int] = field(default_factory=dict)
    other: int = 0


@dataclass
class Sampled:
    fingerprint: str
    status: str
    labels: dict[str, str]


@dataclass
class Digest:
    first_seen: datetime
    last_seen: datetime
    fired: int = 0
    resolved: int = 0
    repeats: int = 0
    suppressed: int = 0  # firing transitions that a silence or inhibition matched
    reported: int = -1  # `events` when the ledger last told the digest
    events: int = 0  # summarised alert events applied (every kind)
    by_label: dict[str, Tally] = field(default_factory=dict)
    sample: list[Sampled] = field(default_factory=list)
    sketch: bytearray = field(default_factory=lambda: bytearray(SKETCH_BITS // 8))
    registers: bytearray = field(default_factory=lambda: bytearray(1 << HLL_P))

    @property
    def firing(self) -> int:
        return self.fired - self.resolved


def member_bytes(alert: Alert, flips: int) -> int:
    """What tracking this alert adds to the group's JSON, at most (a generous estimate:
    orjson's own length of every string a member holds, and `flips` remembered flips)."""
    detail = alert.anomaly.model_dump(mode="json") if alert.anomaly is not None else None
    return size(alert.fingerprint, alert.rule, alert.summary, alert.runbook_url,
                alert.labels, flips, detail)  # fmt: skip


def size(fingerprint: str, rule: str, summary: str, runbook_url: str | None,
         labels: dict[str, str], flips: int,
         anomaly: dict[str, Any] | None = None) -> int:  # fmt: skip
    n = MEMBER_FIXED + TRANSITION_BYTES * flips
    n += len(orjson.dumps([fingerprint, rule, summary, runbook_url, anomaly]))
    return n + len(orjson.dumps(labels))


def bucket(fingerprint: str) -> tuple[int, int]:
    h = int.from_bytes(hashlib.blake2b(fingerprint.encode(), digest_size=4).digest())
    h %= SKETCH_BITS
    return h >> 3, 1 << (h & 7)


def _count(d: Digest, fingerprint: str) -> None:
    """Add a fingerprint to the HyperLogLog: its register keeps the highest rank (the
    position of the first 1 bit after the index bits) seen."""
    h = int.from_bytes(hashlib.blake2b(fingerprint.encode(), digest_size=8,
                                       person=b"tocsin-hll").digest())  # fmt: skip
    index, rest = h >> HLL_Q, h & ((1 << HLL_Q) - 1)
    rank = HLL_Q - rest.bit_length() + 1
    if rank > d.registers[index]:
        d.registers[index] = rank


def distinct_estimate(registers: bytes | bytearray) -> float:
    """Distinct fingerprints added, from HyperLogLog registers: Ertl's improved raw
    estimator ("New cardinality estimation algorithms for HyperLogLog sketches", 2017),
    unbiased from 0 to far beyond what a group sees without HLL++'s tables."""
    m = len(registers)
    counts = [registers.count(k) for k in range(HLL_Q + 2)]
    z = m * _tau(1 - counts[HLL_Q + 1] / m)
    for k in range(HLL_Q, 0, -1):
        z = 0.5 * (z + counts[k])
    z += m * _sigma(counts[0] / m)
    if z == math.inf:
        return 0.0
    return m * m / (2 * math.log(2) * z)


def _sigma(x: float) -> float:
    if x == 1:
        return math.inf
    y, z = 1.0, x
    while True:
        x *= x
        before = z
        z += x * y
        y += y
        if z == before:
            return z


def _tau(x: float) -> float:
    if x in (0, 1):
        return 0.0
    y, z = 1.0, 1 - x
    while True:
        x = math.sqrt(x)
        before = z
        y *= 0.5
        z -= (1 - x) ** 2 * y
        if z == before:
            return z / 3


def firing_estimate(set_bits: int, buckets: int = SKETCH_BITS) -> float:
    """Alerts firing now, from the sketch's set bits: linear counting, n = -m ln(1 - B/m),
    which counts the alerts that share a bucket (0.2% standard error at 100,000 in
    131,072 buckets). A full sketch says only "at least this many"."""
    if set_bits >= buckets:
        return float(buckets)
    return -buckets * math.log1p(-set_bits / buckets)


def _cut(labels: dict[str, str], keep: int) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in labels.items():
        if len(out) >= keep:
            break
        out[k] = v[:MAX_VALUE_CHARS]
    return out


def fire(
    d: Digest, fingerprint: str, labels: dict[str, str], now: datetime, suppressed: bool
) -> bool:
    """A summarised alert fires: True when it starts firing, False for a repeat."""
    d.events += 1
    d.last_seen = now
    _count(d, fingerprint)
    byte, bit = bucket(fingerprint)
    if d.sketch[byte] & bit:
        d.repeats += 1
        return False
    d.sketch[byte] |= bit
    d.fired += 1
    d.suppressed += suppressed
    by_label = d.by_label
    for key, value in labels.items():
        tally = by_label.get(key)
        if tally is None:
            if len(by_label) >= MAX_KEYS:
                continue
            tally = by_label[key] = Tally()
        value = value[:MAX_VALUE_CHARS]
        if value in tally.values:
            tally.values[value] += 1
        elif len(tally.values) < MAX_VALUES:
            tally.values[value] = 1
        else:
            tally.other += 1
    if len(d.sample) < SAMPLE:
        d.sample.append(Sampled(fingerprint, "firing", _cut(labels, SAMPLE_LABELS)))
    else:
        _mark(d, fingerprint, "firing")
    return True


def resolve(d: Digest, fingerprint: str, now: datetime) -> bool:
    """A summarised alert resolves: True when it was counted as firing."""
    d.events += 1
    byte, bit = bucket(fingerprint)
    if not d.sketch[byte] & bit:
        return False  # never counted, or already resolved
    d.sketch[byte] &= ~bit & 0xFF
    d.resolved += 1
    d.last_seen = now
    _mark(d, fingerprint, "resolved")
    return True


def _mark(d: Digest, fingerprint: str, status: str) -> None:
    for s in d.sample:
        if s.fingerprint == fingerprint:
            s.status = status


def view(d: Digest) -> dict[str, Any]:
    """The digest as `schemas.incidents.StormDigest` fields: `summarised` and `firing`
    estimated (see the module's docstring), the other counts exact."""
    firing = round(firing_estimate(d.firing)) if d.firing > 0 else 0
    summarised = max(round(distinct_estimate(d.registers)), firing)
    return {
        "summarised": summarised, "firing": firing, "resolved": d.resolved,
        "repeats": d.repeats, "suppressed": d.suppressed, "events": d.events,
        "first_seen": d.first_seen, "last_seen": d.last_seen,
        "by_label": {k: {"values": dict(t.values), "other": t.other}
                     for k, t in d.by_label.items()},
        "sample": [{"fingerprint": s.fingerprint, "status": s.status, "labels": s.labels}
                   for s in d.sample],
    }  # fmt: skip


# -- serialisation ---------------------------------------------------------------------


def encode_default(obj: object) -> str:
    """orjson's `default` for a group state: the sketch and registers as base64 text."""
    if isinstance(obj, bytearray):
        return base64.b64encode(obj).decode()
    raise TypeError(f"{type(obj).__name__} in a group state")


def from_dict(doc: dict[str, Any]) -> Digest:
    return Digest(
        first_seen=datetime.fromisoformat(doc["first_seen"]),
        last_seen=datetime.fromisoformat(doc["last_seen"]),
        fired=doc["fired"], resolved=doc["resolved"], repeats=doc["repeats"],
        suppressed=doc["suppressed"], reported=doc["reported"], events=doc["events"],
        by_label={k: Tally(dict(t["values"]), t["other"]) for k, t in doc["by_label"].items()},
        sample=[Sampled(s["fingerprint"], s["status"], s["labels"]) for s in doc["sample"]],
        sketch=bytearray(base64.b64decode(doc["sketch"])),
        # a state written before the registers: the distinct count starts again (the
        # digest reports at least the alerts firing now)
        registers=bytearray(base64.b64decode(doc["registers"])) if "registers" in doc
        else bytearray(1 << HLL_P),
    )  # fmt: skip

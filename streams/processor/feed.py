"""Decode input records and feed them to a rule engine; shared by the Kafka worker,
the state restore's replay and `tocsin backtest`, so all three run exactly the
production code path.

The worker hands over a whole run of records of one partition (`feed_metrics` /
`feed_logs`): one Python loop per run, the validator and the engine's entry point
looked up once, and only the records that were not simply accepted come back, each
with its verdict. The single-record `feed_metric` / `feed_log` are the same code for
one record.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, cast

import orjson
import structlog
from pydantic import ValidationError

from processors.rules.compiled import DEFAULT_TENANT
from processors.rules.engine import LATE, TENANTS_CAPPED, RuleEngine
from schemas import DecodeError
from schemas.config.installation import TENANT_ID
from streams.logs import Throttle
from streams.processor.decoding import LOG_FIELDS, METRIC_FIELDS, decode_log, decode_metric

log = structlog.get_logger(__name__)

OK, IS_LATE, INVALID, FUTURE, OVERFLOW = "ok", "late", "invalid", "future", "overflow"
# a record whose evaluation raised: a fault of tocsin's, dead-lettered so that the
# partition goes on (with the traceback in the log)
FAILED, EVALUATION_ERROR = "failed", "evaluation_error"
_FAULTS = Throttle(30.0)  # one traceback per kind of fault per 30 s
# the dead-letter reason of a sample refused by its tenant's series cap
CAPPED_REASON = "tenant_series_cap"
# the dead-letter reason of a sample of a tenant new to a partition that holds its cap
TENANTS_CAPPED_REASON = "partition_tenant_cap"

_NO_TIMESTAMP = 0  # confluent_kafka.TIMESTAMP_NOT_AVAILABLE
_UNSET = 2**63  # above every Kafka timestamp: each record takes the exact future check


@dataclass(frozen=True, slots=True)
class Verdict:
    outcome: str
    reason: str = ""
    error: str = ""
    # whose record it is, for its dead letter: the record's own tenant, as far as it
    # can be read
    tenant: str = DEFAULT_TENANT


# the two common outcomes are shared instances: no allocation per record
ACCEPTED = Verdict(OK)
LATE_SAMPLE = Verdict(IS_LATE)


class InputRecord(Protocol):
    """What the feed reads of a consumed record (confluent_kafka.Message has it; tests
    and the backtest hand in plain objects)."""

    def value(self) -> bytes | None: ...
    def key(self) -> bytes | None: ...
    def timestamp(self) -> tuple[int, float]: ...


Rejected = list[tuple[InputRecord, Verdict]]


def written_at(kind: int, ms: float) -> float:
    """The clock a sample's timestamp is checked against for being in the future: the
    time the record was written to Kafka, not this worker's clock. A replay after a crash
    then refuses exactly the records the first run refused (the wall clock has moved on
    by then), which exactly-once needs; so does a backtest of the topic. With
    `message.timestamp.type=LogAppendTime` on the input topics it is the broker's clock."""
    if kind == _NO_TIMESTAMP or ms <= 0:
        return time.time()
    return ms / 1000.0


def first_accepting_ms(t: float, ahead: float) -> int:
    """The least Kafka timestamp (epoch ms, >= 1) from which on a sample at `t` is not
    ahead: for every `ms >= first_accepting_ms(t, ahead)`, `t > ms / 1000.0 + ahead` is
    false, so the feed compares one int per record instead of that float arithmetic.
    Exact, not approximate: `ms / 1000.0 + ahead` never decreases as ms grows (each step
    rounds correctly), so the predicate flips once, and the estimate is stepped onto
    that point with the very expression the feed would evaluate."""

    def accepted(ms: int) -> bool:
        return not t > ms / 1000.0 + ahead

    guess = (t - ahead) * 1000.0
    if not guess < 9e15:  # beyond exact float ms (or NaN): leave every record to the check
        return 2**63
    ms = max(1, math.ceil(guess))
    while ms > 1 and accepted(ms - 1):
        ms -= 1
    while not accepted(ms):
        ms += 1
    return ms


# datetime.timestamp() on the validator's datetimes costs a call into their tzinfo's
# utcoffset() every time (~0.4 us); the offset of a tzinfo never changes (pydantic's are
# fixed offsets, and it hands out one object per offset), so it is looked up once. The
# arithmetic is timestamp()'s own: integer microseconds since the epoch, divided once,
# so the float is the same to the last bit (tests/unit/rules/test_decoding.py).
_EPOCH_DAY = 719163  # date(1970, 1, 1).toordinal()
_OFFSETS: dict[object, int] = {}


def _offset_us(at: datetime) -> int:
    offset = at.utcoffset()
    assert offset is not None  # aware by validation
    us = (offset.days * 86400 + offset.seconds) * 1_000_000 + offset.microseconds
    if len(_OFFSETS) < 4096:  # distinct offsets are few; never let input grow it unbounded
        _OFFSETS[at.tzinfo] = us
    return us


def epoch_seconds(at: datetime) -> float:
    """at.timestamp(), as the feed computes it."""
    off = _OFFSETS.get(at.tzinfo)
    if off is None:
        off = _offset_us(at)
    return (
        ((at.toordinal() - _EPOCH_DAY) * 86400 + at.hour * 3600 + at.minute * 60 + at.second)
        * 1_000_000
        + at.microsecond
        - off
    ) / 1_000_000


def feed_metrics(engine: RuleEngine, records: Sequence[InputRecord], skew: timedelta) -> Rejected:
    """Fold a run of `metrics` records of one partition into its engine, in order;
    return the records not simply accepted, with their verdicts."""
    return _feed(engine, records, skew, logs=False)


def feed_logs(engine: RuleEngine, records: Sequence[InputRecord], skew: timedelta) -> Rejected:
    """The same for a run of `logs` records."""
    return _feed(engine, records, skew, logs=True)


def _feed(engine: RuleEngine, records: Sequence[InputRecord], skew: timedelta,
          logs: bool) -> Rejected:  # fmt: skip
    """One loop for both signals: they differ in the validator, the model named in an
    error and the engine's entry point, decided per record by one flag test (a call
    through a per-signal function would cost more than the flag)."""
    rejected: Rejected = []
    validate: Callable[[bytes], Any]
    process: Callable[..., str | None]  # the entry point of the signal, looked up once
    refuse: object
    if logs:
        validate, refuse, model = LOG_FIELDS.validate_json, decode_log, "LogRecord"
        process = cast("Callable[..., str | None]", engine.process_log)
    else:
        validate, refuse, model = METRIC_FIELDS.validate_json, decode_metric, "MetricSample"
        process = cast("Callable[..., str | None]", engine.process_metric)
    overflows = engine.overflows
    ahead = skew.total_seconds()
    offsets = _OFFSETS
    last_at: object = None
    last_tz: object = None
    last_t = 0.0
    not_before, repeats = _UNSET, False
    for rec in records:
        raw = rec.value() or b""
        try:
            r = validate(raw)
        except ValidationError:
            rejected.append((rec, _refused(refuse, raw)))
            continue
        at = r["time"]
        # records of one scrape share their timestamp: reuse its epoch. Only compared
        # under one tzinfo object (pydantic has one for UTC), where == is a field
        # comparison; across tzinfos it would cost a utcoffset() call on each side
        if at.tzinfo is not last_tz or at != last_at:
            # at.timestamp() to the bit, at half its cost (see epoch_seconds)
            off = offsets.get(at.tzinfo)
            if off is None:
                off = _offset_us(at)
            last_t = (
                (
                    ((at.toordinal() - _EPOCH_DAY) * 86400 + at.hour * 3600 + at.minute * 60)
                    + at.second
                )
                * 1_000_000
                + at.microsecond
                - off
            )
            last_t /= 1_000_000
            last_at, last_tz = at, at.tzinfo
            # the int threshold costs ~1 us: worth it only for a timestamp that repeats
            # (a scrape), so its first record is checked exactly and the second sets it
            not_before, repeats = _UNSET, False
        elif not repeats:
            not_before, repeats = first_accepting_ms(last_t, ahead), True
        t = last_t
        kind, ms = rec.timestamp()
        # the envelope's tenant, set at the edge from the credential
        tenant = r.get("tenant", DEFAULT_TENANT)
        # an int comparison decides the usual record; the rest is decided exactly
        if (ms < not_before or kind == _NO_TIMESTAMP) and t > written_at(kind, ms) + ahead:
            error = f"{model}.time: {at.isoformat()} is more than {skew} ahead"
            rejected.append((rec, Verdict(FUTURE, "future_timestamp", error, tenant)))
            continue
        # the record key is the series: the engine caches the series' route under it
        # (tenants share keys, an identical series of two tenants has one: each tenant's
        # engine has its own routes)
        route = rec.key()
        if logs:
            labels = r.get("labels") or {}
            if "source" not in labels:
                labels = {**labels, "source": r.get("source", "unknown")}
            result = process(labels, r.get("http_status"), r.get("duration_ms"), t, route,
                             tenant)  # fmt: skip
        else:
            try:
                result = process(r["name"], r.get("labels") or {}, r["value"], t, "", route,
                                 tenant)  # fmt: skip
            except Exception as exc:
                # a fault in evaluating one record must cost that record, not the
                # partition: raised, it would stop the worker on it, and on every replay
                rejected.append((rec, _failed(exc, r, model)))
                continue
        if result is not None:
            rejected.append((rec, LATE_SAMPLE if result == LATE else
                             _tenants_capped(engine, tenant) if result == TENANTS_CAPPED else
                             _capped(engine, r, logs)))  # fmt: skip
        if overflows:
            rejected += [(rec, verdict) for verdict in _overflowed(engine, tenant)]
    return rejected


def _refused(decode: object, raw: bytes) -> Verdict:
    """The reason and message for a refused record, from the input views (which name
    the public model), so a dead letter reads the same whichever path refused it."""
    tenant = _claimed_tenant(raw)
    try:
        decode(raw)  # type: ignore[operator]
    except DecodeError as exc:
        return Verdict(INVALID, exc.reason, str(exc), tenant)
    # unreachable while the fields validators accept exactly what the views accept
    # (tests/unit/rules/test_decoding.py); refusing is the safe side if they ever drift
    return Verdict(INVALID, "validation", "refused by the processor's input validator", tenant)


def _claimed_tenant(raw: bytes) -> str:
    """The tenant a refused record names, if it is a tenant id: a record that does not
    decode has nothing better to say whose it is."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return DEFAULT_TENANT
    tenant = doc.get("tenant") if isinstance(doc, dict) else None
    if isinstance(tenant, str) and TENANT_ID.fullmatch(tenant):
        return tenant
    return DEFAULT_TENANT


def _failed(exc: Exception, r: dict[str, Any], model: str) -> Verdict:
    tenant = r.get("tenant", DEFAULT_TENANT)
    if _FAULTS.held_back(type(exc).__name__) is not None:
        log.error("evaluation_failed", model=model, tenant=tenant, exc_info=exc)
    error = f"{model} not evaluated: {type(exc).__name__}: {exc}"[:500]
    return Verdict(FAILED, EVALUATION_ERROR, error, tenant)


def _capped(engine: RuleEngine, r: dict[str, Any], logs: bool) -> Verdict:
    tenant = r.get("tenant", DEFAULT_TENANT)
    labels = sorted((r.get("labels") or {}).items())
    series = f"log {labels!r}" if logs else f"{r['name']} {labels!r}"
    error = (f"tenant {tenant!r}: {engine.clocks.tenant_cap} series in this partition, its cap "
             f"(settings.max_series_per_tenant); new series {series} not evaluated")  # fmt: skip
    return Verdict(OVERFLOW, CAPPED_REASON, error, tenant)


def _tenants_capped(engine: RuleEngine, tenant: str) -> Verdict:
    cap = engine.partition.settings.max_tenants_per_partition
    error = (f"tenant {tenant!r}: this partition already has samples of {cap} tenants, its "
             f"cap (settings.max_tenants_per_partition); not evaluated")  # fmt: skip
    return Verdict(OVERFLOW, TENANTS_CAPPED_REASON, error, tenant)


def _overflowed(engine: RuleEngine, tenant: str) -> list[Verdict]:
    out = [
        Verdict(
            OVERFLOW,
            "cardinality",
            f"rule {rule}: tenant {tenant!r} has the rule's cap of series (max_series, per "
            f"tenant); dropped group {sorted(labels.items())!r} for this rule only",
            tenant,
        )
        for rule, labels in engine.overflows
    ]
    engine.overflows.clear()
    return out


class RawRecord:
    """One raw record outside Kafka (backtest lines, tests)."""

    __slots__ = ("_key", "_raw", "_ts")

    def __init__(self, raw: bytes, now_s: float, key: bytes | None) -> None:
        self._raw, self._key = raw, key
        self._ts = (1, now_s * 1000.0)  # as Kafka has it: (create time, epoch ms)

    def value(self) -> bytes | None:
        return self._raw

    def key(self) -> bytes | None:
        return self._key

    def timestamp(self) -> tuple[int, float]:
        return self._ts


def feed_metric(
    engine: RuleEngine, raw: bytes, now_s: float, skew: timedelta, key: bytes | None = None
) -> Verdict:
    """One record, written to Kafka at `now_s` (epoch s); `key` is its Kafka key."""
    return _one(feed_metrics(engine, [RawRecord(raw, now_s, key)], skew))


def feed_log(
    engine: RuleEngine, raw: bytes, now_s: float, skew: timedelta, key: bytes | None = None
) -> Verdict:
    return _one(feed_logs(engine, [RawRecord(raw, now_s, key)], skew))


def _one(rejected: Rejected) -> Verdict:
    # the single-record API reports a cardinality overflow as accepted: the record was
    # folded into every rule but the capped one (a tenant's cap refuses the whole record)
    for _, verdict in rejected:
        if verdict.outcome != OVERFLOW or verdict.reason in (CAPPED_REASON, TENANTS_CAPPED_REASON):
            return verdict
    return ACCEPTED

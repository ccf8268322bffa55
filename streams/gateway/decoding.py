"""Request bodies decoded into Outcomes, off the event loop: small bodies on a thread,
big ones in a process of their own.

Why processes for big bodies: a decoding thread holds the GIL for most of its time
(pydantic validates in C without releasing it), and with two of them busy the event
loop waits for its turn at every socket call, so `/healthz` stalled for up to a second
and more while a few 10 MB bodies were decoded. A decoding process has its own GIL,
runs at a lower CPU priority than the event loop, and hands back only the records.

The decode functions here are pure functions of their arguments (a picklable
``Topics`` instead of the gateway): they run the same on a thread or in a process, and
what the gateway counts (dead letters, skipped values) comes back in the Outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from connectors.sources.alertmanager import decode_alertmanager_items
from connectors.sources.batches import BodyError, ItemError, inflate, iter_batch
from connectors.sources.pagerduty import decode_pagerduty
from connectors.sources.remote_write import parse_write_request
from connectors.sources.remote_write_pb import RawWriteRequest
from schemas import Alert, DecodeError, LogRecord, MetricSample
from schemas.errors import TocsinError
from streams.gateway.records import Outcome, RecordMaker, TimeBounds
from streams.gateway.remote_write_records import lean_records, model_records
from streams.gateway.writer import Record
from streams.runtime.deadletters import dead_letter

T = TypeVar("T")
MAX_PAGERDUTY_EVENT = 512 * 1024  # PagerDuty's own bound on an Events API v2 event
DECODE_THREADS = 2
DECODE_PROCESSES = 2
PROCESS_BODY = 256 * 1024
"""Bodies from this size on are decoded in a process: below it a body's decoding holds
the GIL for a few milliseconds at most, less than handing it to a process costs."""
INLINE_BODY = 48 * 1024
"""Bodies below this size (a Prometheus batch of 64 alerts is about 20 KiB) are decoded
on the event loop: a millisecond or two, less than the hop to a thread and back costs."""
DECODER_NICE = 10  # health checks and small requests before bulk decoding


class DecoderLost(TocsinError):
    """A decoding process died (the kernel's OOM killer, a crash): the request is
    answered 503, the pool is started again."""


@dataclass(frozen=True, slots=True)
class Topics:
    """The topic names decoding writes to (the gateway's catalog, picklable)."""

    metrics: str
    logs: str
    alerts: str
    deadletter: str

    def of(self, name: str) -> str:
        return str(getattr(self, name))


def letter(topic: str, source: str, raw: bytes, reason: str, error: str) -> Record:
    """A dead-letter record for ``raw``: a bounded prefix of it with its size and digest,
    so it always fits in one Kafka record."""
    # counted by the gateway once the decoding is back; its caller answers the sender
    value = dead_letter(None, source=source, value=raw, reason=reason, error=error,
                        stage="gateway", worker="gateway", logged=False)  # fmt: skip
    return (topic, None, value)


def _finish(topics: Topics, out: Outcome, source: str, raw: bytes) -> Outcome:
    """One dead letter per request that refused anything: the body (bounded) and the
    first errors by position."""
    if out.refused is not None or out.rejected:
        out.records.append(letter(topics.deadletter, source, raw, out.reason, out.error_text()))
        out.letter_source = source
    return out


def _metric_key(m: MetricSample) -> bytes:
    return m.series_key().encode()


def _log_key(r: LogRecord) -> bytes:
    return (r.labels.get("service") or r.source).encode()


def _alert_key(a: Alert) -> bytes:
    return a.fingerprint.encode()


_BATCHES: dict[str, tuple[type[Any], Callable[[Any], bytes]]] = {
    "metrics": (MetricSample, _metric_key),
    "logs": (LogRecord, _log_key),
}


def decode_batch(topics: Topics, topic: str, raw: bytes, encoding: str | None, ctype: str,
                 bounds: TimeBounds, tenant: str = "default") -> Outcome:  # fmt: skip
    model, key = _BATCHES[topic]
    out = Outcome(topic)
    maker = RecordMaker(out, topics.of(topic), key, bounds, tenant)
    body = raw
    try:
        body = inflate(raw, encoding)
        for position, item in iter_batch(model, body, ctype):
            if isinstance(item, ItemError):
                out.reject(position, item.message)
            else:
                maker.add(position, item)
    except BodyError as exc:
        out.refuse(str(exc), exc.reason)
    return _finish(topics, out, f"http:/v1/{topic}", body)


AlertItems = Callable[[bytes, datetime], tuple[list[tuple[int, Alert]], list[ItemError]]]


def decode_alert_items(topics: Topics, name: str, route: str, decode: AlertItems,
                       raw: bytes, encoding: str | None, now: datetime,
                       tenant: str = "default", keep: bool = False,
                       ) -> tuple[Outcome, list[Alert]]:  # fmt: skip
    """A body of many alerts in one source's shape: the valid ones become records (and,
    with ``keep``, are returned with their ``tenant``), the others are
    named by position, and a request that refused anything leaves one dead letter."""
    out = Outcome(name)
    maker = RecordMaker(out, topics.alerts, _alert_key, tenant=tenant)
    body, valid = raw, []
    try:
        body = inflate(raw, encoding)
        alerts, errors = decode(body, now)
    except (BodyError, DecodeError) as exc:
        out.refuse(str(exc), exc.reason)
    else:
        for e in errors:
            out.reject(e.position, e.message)
        for position, alert in alerts:
            maker.add(position, alert)
        # what the records say; made only for a route that derives more from them
        valid = [a.model_copy(update={"tenant": tenant}) for _, a in alerts] if keep else []
    return _finish(topics, out, f"http:{route}", body), valid


def decode_alertmanager(topics: Topics, raw: bytes, encoding: str | None, now: datetime,
                        tenant: str = "default") -> Outcome:  # fmt: skip
    return decode_alert_items(topics, "alertmanager", "/v1/alertmanager",
                              decode_alertmanager_items, raw, encoding, now, tenant)[0]  # fmt: skip


def decode_pagerduty_event(topics: Topics, raw: bytes, encoding: str | None, now: datetime,
                           tenant: str = "default") -> tuple[Outcome, str | None]:  # fmt: skip
    out = Outcome("pagerduty")
    body = raw
    try:
        body = inflate(raw, encoding)
        if len(body) > MAX_PAGERDUTY_EVENT:
            raise BodyError(f"event is {len(body)} bytes: PagerDuty's limit is "
                            f"{MAX_PAGERDUTY_EVENT}", "too_large")  # fmt: skip
        event, alert = decode_pagerduty(body, now)
    except BodyError as exc:
        out.refuse(str(exc), exc.reason)
    except DecodeError as exc:
        out.refuse(str(exc), exc.reason)
    else:
        RecordMaker(out, topics.alerts, _alert_key, tenant=tenant).add(0, alert)
        return _finish(topics, out, "http:/v2/enqueue", body), event.dedup_key
    return _finish(topics, out, "http:/v2/enqueue", body), None


def decode_remote_write_body(topics: Topics, raw: bytes, bounds: TimeBounds,
                             tenant: str = "default") -> Outcome:  # fmt: skip
    out = Outcome("remote_write")
    try:
        lean = parse_write_request(raw, RawWriteRequest, counted=False)
        if not lean_records(out, lean, topics.metrics, bounds, tenant):
            out = Outcome("remote_write")  # a series the model must judge: all of it does
            model_records(out, parse_write_request(raw), topics.metrics, bounds, tenant)
    except DecodeError as exc:
        out.refuse(str(exc), exc.reason)
    return _finish(topics, out, "http:/api/v1/write", raw)


def _lower_priority() -> None:
    with contextlib.suppress(OSError):
        os.nice(DECODER_NICE)


class Decoders:
    """Where bodies are decoded: a thread pool for small ones, a process pool for big
    ones, started on the first big body (again after a decoding process died).

    A big body is handed to the process pool from a thread of its own: starting the
    pool's processes waits for the fork server to import the decoders, which must hold
    neither the event loop nor the gateway's start-up (a gateway restarted under load
    listens at once; the first big body waits instead)."""

    def __init__(self, threads: int = DECODE_THREADS, processes: int = DECODE_PROCESSES,
                 process_body: int = PROCESS_BODY) -> None:  # fmt: skip
        self.threads = ThreadPoolExecutor(threads, thread_name_prefix="decode")
        self.processes = processes
        self.process_body = process_body
        self._handoff = ThreadPoolExecutor(processes, thread_name_prefix="decode-handoff")
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def _processes(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                # forkserver: a fork of a process with librdkafka's threads is unsafe, and
                # a fresh interpreter per worker costs a second of imports
                ctx = multiprocessing.get_context("forkserver")
                ctx.set_forkserver_preload([__name__])
                self._pool = ProcessPoolExecutor(self.processes, mp_context=ctx,
                                                 initializer=_lower_priority)  # fmt: skip
            return self._pool

    def _in_process(self, work: Callable[[], T]) -> T:
        pool = self._processes()
        try:
            return pool.submit(work).result()
        except BrokenProcessPool as exc:
            with self._lock:
                if self._pool is pool:
                    self._pool = None
            pool.shutdown(wait=False, cancel_futures=True)
            raise DecoderLost(f"a decoding process died: {exc}") from exc

    async def run(self, size: int, work: Callable[[], T]) -> T:
        loop = asyncio.get_running_loop()
        if 0 < size < INLINE_BODY:
            return work()
        if size < self.process_body:
            return await loop.run_in_executor(self.threads, work)
        return await loop.run_in_executor(self._handoff, self._in_process, work)

    def shutdown(self) -> None:
        self.threads.shutdown(wait=False, cancel_futures=True)
        self._handoff.shutdown(wait=False, cancel_futures=True)
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

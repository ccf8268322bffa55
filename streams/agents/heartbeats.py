"""The heartbeat watch of the agents worker: a faust agent with a changelog-backed table
and a timer, so a missed heartbeat is noticed by whichever worker owns it now.

- ``heartbeats`` carries pings (``HeartbeatPing``: from the gateway's
  ``/v1/heartbeats/<name>``, or from the router for an alert a heartbeat's ``alert``
  matchers match) and timer ticks, keyed ``<tenant>/<name>``. Its state lives on the
  partition murmur2 gives the key (the partitioner of every Java client, of aiokafka and
  of the agents' outbox); a record another producer put elsewhere (librdkafka's default
  partitioner is CRC32) is forwarded there first, so one owner holds each heartbeat.
- the agent ``watch_heartbeats`` owns the ``heartbeats`` table and applies the pure
  core (processors/heartbeats/watch.py) to each record in order. Its alerts go to
  ``alerts`` like any intake's, so routes, silences and policies apply to them.
- a timer finds heartbeats whose deadline passed and sends them a tick through the
  topic: the table is only ever written by the agent that owns the partition, and a
  tick sent by a worker that lost the partition meanwhile is decided by the new owner.

Effectively once, as the incident agents are (app.py): the alerts are acknowledged by
Kafka before the state that implies them is written to the table (and its changelog,
acknowledged too) and before the batch's offsets can be committed. After a kill -9
the next owner restores the table, replays from the committed offset, skips what the
state already holds (``input_offset``) and re-decides the rest on the old state: the
same alert ids again, which the incident agents apply once. Nobody is paged twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import sys
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NoReturn, cast

import faust
import orjson
import structlog
from faust.types import EventT
from prometheus_client import Counter

from processors.heartbeats.watch import HeartbeatState, deadline, on_ping, on_tick
from processors.rules.matching import LabelPredicate, compile_matchers
from schemas import Alert, DecodeError, decode, encode
from schemas.config import Config, Heartbeat, Installation
from schemas.heartbeats import HeartbeatPing, heartbeat_key
from streams.agents.decide import Work, partition_of
from streams.agents.gaps import GapFiller
from streams.agents.outbox import Outbox
from streams.catalog import Catalog
from streams.kafka import KafkaWait
from streams.runtime.deadletters import dead_letter
from streams.settings import KafkaSettings

log = structlog.get_logger(__name__)
TICK = b'{"t":"tick"}'
BATCH, WITHIN = 500, 0.05


@dataclass
class Decided:
    """A batch's outcome: records to send (alerts, forwards, dead letters), then the
    table writes ((key, partition, state JSON or None to forget))."""

    sends: list[tuple[str, bytes | None, bytes, int | None]] = field(default_factory=list)
    writes: list[tuple[bytes, int, bytes | None]] = field(default_factory=list)
    missed: int = 0
    back: int = 0


class HeartbeatWatch:
    """Heartbeat decisions without Kafka: the agent hands in records and the table."""

    def __init__(self, cfg: Config | Installation, catalog: Catalog,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:  # fmt: skip
        self._clock = clock
        self._topic: faust.TopicT | None = None  # set by install: the router's pings
        configs = cfg.tenants if isinstance(cfg, Installation) else {cfg.tenant: cfg}
        # each tenant's heartbeats, pinged by that tenant's pings and alerts only
        self.by_name = {(t, h.name): h for t, c in configs.items() for h in c.heartbeats}
        self._matchers: dict[str, list[tuple[Heartbeat, LabelPredicate]]] = {
            t: [(h, compile_matchers(h.alert)) for h in c.heartbeats if h.alert]
            for t, c in configs.items()
        }
        self.topic = catalog.name("heartbeats")
        self.alerts = catalog.name("alerts")
        self.deadletter = catalog.name("deadletter")
        self.partitions = catalog.get("heartbeats").partitions
        self._ticked: dict[bytes, str] = {}
        # what the heartbeats agent's gap lookups say while the broker is away (readiness)
        self.gap_wait: KafkaWait | None = None
        self.changelog = ""  # its table's changelog, set by install

    def watches(self, alert: Alert) -> Heartbeat | None:
        """The heartbeat an alert pings (Prometheus' Watchdog), if any: such an alert is
        a ping, never an incident of its own."""
        for hb, match in self._matchers.get(alert.tenant, ()):
            if match(alert.labels):
                return hb
        return None

    def ping_of(self, alert: Alert, hb: Heartbeat, now: datetime) -> tuple[bytes, bytes, int]:
        """(key, value, partition) of the ping a firing watched alert is; its id derives
        from the alert's, so the router's replay re-sends the same ping."""
        ping = HeartbeatPing(
            event_id=hashlib.sha256(f"ping|{alert.event_id}".encode()).hexdigest()[:32],
            tenant=alert.tenant, produced_at=min(alert.produced_at, now), name=hb.name,
            via="alert", fingerprint=alert.fingerprint)  # fmt: skip
        key = heartbeat_key(alert.tenant, hb.name)
        return key, encode(ping), partition_of(key, self.partitions)

    async def send_ping(self, alert: Alert, hb: Heartbeat) -> Any:
        """Send the ping a watched alert is; the awaitable its acknowledgement resolves."""
        assert self._topic is not None
        key, value, partition = self.ping_of(alert, hb, self._clock())
        return await self._topic.send(key=key, value=value, partition=partition)

    def decide(self, batch: Sequence[Work], table: Mapping[bytes, bytes | None],
               now: datetime) -> Decided:  # fmt: skip
        out = Decided()
        touched: dict[bytes, tuple[int, HeartbeatState | None]] = {}
        for rec in batch:
            home = partition_of(rec.key, self.partitions)
            if rec.partition != home:  # another producer's partitioner: to its owner
                out.sends.append((self.topic, rec.key, rec.value, home))
                continue
            st = touched[rec.key][1] if rec.key in touched else _load(table.get(rec.key))
            if st is not None and rec.offset <= st.input_offset:
                continue  # a replay of what the table already holds
            st = self._apply(rec, st, now, out)
            if st is not None:
                st.input_offset = rec.offset
            touched[rec.key] = (rec.partition, st)
        for key, (partition, st) in touched.items():
            if st is None and not table.get(key):
                continue
            value = orjson.dumps(st.to_dict()) if st is not None else None
            out.writes.append((key, partition, value))
        return out

    def _apply(self, rec: Work, st: HeartbeatState | None, now: datetime,
               out: Decided) -> HeartbeatState | None:  # fmt: skip
        if rec.value == TICK:
            self._ticked.pop(rec.key, None)
            if st is None:
                return None
            alerts, keep = on_tick(st, now, self.by_name.get((st.tenant, st.name)))
            self._emit(alerts, out)
            return st if keep else None
        try:
            ping = decode(HeartbeatPing, rec.value)
        except DecodeError as exc:
            out.sends.append(self._letter(rec.value, str(exc), exc.reason))
            return st
        hb = self.by_name.get((ping.tenant, ping.name))
        if hb is None:
            why = f"HeartbeatPing.name: {ping.name!r} is not a heartbeat of the config" + (
                f" of tenant {ping.tenant!r}" if ping.tenant != "default" else ""
            )
            out.sends.append(self._letter(rec.value, why, "validation"))
            return st
        st = st or HeartbeatState(tenant=ping.tenant, name=ping.name)
        self._emit(on_ping(st, min(ping.produced_at, now), hb, now), out)
        return st

    def _emit(self, alerts: Iterable[Alert], out: Decided) -> None:
        for alert in alerts:
            out.sends.append((self.alerts, alert.fingerprint.encode(), encode(alert), None))
            if alert.status == "firing":
                out.missed += 1
                log.warning("heartbeat_missed", heartbeat=alert.labels["heartbeat"],
                            since=alert.starts_at.isoformat())  # fmt: skip
            else:
                out.back += 1
                log.info("heartbeat_back", heartbeat=alert.labels["heartbeat"])

    def _letter(self, raw: bytes, error: str, reason: str
                ) -> tuple[str, bytes | None, bytes, int | None]:  # fmt: skip
        letter = dead_letter(None, source=self.topic, value=raw, reason=reason, error=error,
                             stage="agents", worker="agents")  # fmt: skip
        return (self.deadletter, None, letter, None)

    def due(self, table: Iterable[tuple[bytes, bytes | None]], now: datetime) -> list[bytes]:
        """Heartbeats whose deadline passed, without a tick on its way for it yet."""
        keys = []
        for key, stored in table:
            st = _load(stored)
            if st is None:
                continue
            when = deadline(st, self.by_name.get((st.tenant, st.name)))
            if when is None or when > now:
                continue
            stamp = when.isoformat()
            if self._ticked.get(key) != stamp:
                self._ticked[key] = stamp
                keys.append(key)
        return keys


def _load(stored: bytes | None) -> HeartbeatState | None:
    return HeartbeatState.from_dict(orjson.loads(stored)) if stored else None


def _die(event: str) -> NoReturn:
    """As app.py's: end like kill -9, nothing of the failed batch acknowledged."""
    log.exception(event)
    sys.stderr.flush()
    os._exit(70)


def install(app: faust.App, settings: KafkaSettings, cfg: Config | Installation, outbox: Outbox,
            clock: Callable[[], datetime], tick_every: float,
            registry: Any | None = None) -> HeartbeatWatch:  # fmt: skip
    """The heartbeats agent, table and timer on the agents' faust app."""
    catalog = Catalog(settings)
    watch = HeartbeatWatch(cfg, catalog, clock)
    spec = catalog.get("heartbeats")
    topic = app.topic(spec.name, key_type=bytes, value_type=bytes, key_serializer="raw",
                      value_serializer="raw", partitions=spec.partitions)  # fmt: skip
    watch._topic = topic
    table = app.Table("heartbeats", default=None, partitions=spec.partitions, key_type=bytes,
                      value_type=bytes,
                      extra_topic_configs=catalog.changelog_configs())  # fmt: skip
    changelog = watch.changelog = table.changelog_topic.get_topic_name()
    filler = GapFiller(settings, app.conf.id, worker="agents/heartbeat-gaps")
    watch.gap_wait = filler.wait
    counted = registry is not None
    if counted:
        pings = Counter("tocsin_heartbeat_pings_total", "Heartbeat pings received.",
                        registry=registry)  # fmt: skip
        missed = Counter("tocsin_heartbeats_missed_total",
                         "Heartbeats that stopped arriving within their interval.",
                         registry=registry)  # fmt: skip

    @app.on_partitions_revoked.connect
    def _moved(*_: Any, **__: Any) -> None:
        filler.forget()

    @app.agent(topic)
    async def watch_heartbeats(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        batches = cast("faust.Stream[bytes]", stream).take_events(BATCH, within=WITHIN)
        async for events in batches:
            # as app.py's decide: the loop is never left with a batch unfinished, whose
            # offsets faust would then acknowledge
            step = asyncio.ensure_future(_apply_events(events))
            try:
                await asyncio.shield(step)
            except asyncio.CancelledError:
                await step  # stopping: finish this batch first
                raise
            except Exception:
                _die("heartbeats_failed")
            yield None

    async def _with_gaps(events: Sequence[EventT[bytes]]) -> list[Work]:
        batch: list[Work] = []
        for ev in events:
            tp, offset = ev.message.tp, ev.message.offset
            missing = await filler.missing(tp.topic, tp.partition, offset)
            if missing is None:
                continue
            batch.extend(Work(k or b"", v, tp.partition, o) for k, v, o in missing)
            batch.append(Work(cast(bytes, ev.key) or b"", cast(bytes, ev.value), tp.partition,
                              offset))  # fmt: skip
        return batch

    async def _apply_events(events: Sequence[EventT[bytes]]) -> None:
        await _apply(await _with_gaps(events))

    async def _apply(batch: list[Work]) -> None:
        decided = watch.decide(batch, table, clock())
        acks = outbox.acks()
        for where, key, value, partition in decided.sends:
            await outbox.send(acks, where, key, value, partition)
        await acks.all()  # the alerts before the state that implies them
        acks = outbox.acks()
        for hb_key, partition, state in decided.writes:
            if state is None:
                table.data.pop(hb_key, None)
            else:
                table.data[hb_key] = state
            await outbox.send(acks, changelog, hb_key, state, partition)
        await acks.all()
        if counted:
            pings.inc(sum(r.value != TICK for r in batch))
            missed.inc(decided.missed)

    @app.timer(interval=tick_every)  # type: ignore[untyped-decorator]
    async def heartbeat_deadlines() -> None:
        due = watch.due(list(table.items()), clock())
        if not due:
            return
        acks = outbox.acks()
        for key in due:
            await outbox.send(acks, watch.topic, key, TICK, partition_of(key, watch.partitions))
        await acks.all()

    return watch

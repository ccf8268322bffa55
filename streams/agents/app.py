"""`tocsin run agents`: alerts and commands in; incidents, the ledger and the outbox out.

Four agents and two timers:
- alerts are decoded, routed, and re-keyed by incident group onto `incident-work`;
  alerts that can inhibit others are also broadcast on `suppressions`;
- commands and delivery receipts are re-keyed the same way (the group id is part of
  every incident id); silence commands are broadcast on `suppressions`;
- the work agent owns the `groups` table (changelog-backed, co-partitioned with
  `incident-work`), applies the pure core and emits its effects;
- a timer finds groups whose deadline passed (group_wait, group_interval, escalation,
  repeat_interval, snooze, flapping, eviction) and sends them a tick through
  `incident-work`, so every table write happens inside the agent that owns the
  partition and the core always gets `now` from the runtime;
- a task follows `suppressions` into every worker (see broadcast.py).

Guarantee: at-least-once, made effectively-once (processing_guarantee="at_least_once").
- Effects are written, and acknowledged by Kafka (acks=all), BEFORE the group's new
  state is written to the table: a crash can lose a state write whose effects landed
  (the replay re-decides on the old state and re-emits the same ids), never effects
  whose state landed.
- The state remembers the highest incident-work offset it applied and the ids of the
  last events (a replayed re-keying is a new offset with an old event id): a replay of
  what the state already holds is a no-op.
- Every effect has a deterministic id (IncidentEvent: incident:seq; Incident:
  incident@version; Notification: incident/generation/step/target), so the notifier
  and other consumers drop what a crash re-emits.
faust's exactly_once mode is not used: its transactional producer per partition
multiplies producers, and faust-streaming has open reports of duplicate output and
of recovery hangs under it; deduplicating by id is simpler and provable.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import faust
import orjson
import structlog

from processors.incidents.ledger import Effect, Outcome, group_id, group_of
from processors.incidents.lifecycle import (
    expired,
    next_deadline,
    on_alert,
    on_command,
    on_receipt,
    on_tick,
)
from processors.incidents.routing import route
from processors.incidents.state import GroupState, Route, from_dict, to_dict
from processors.incidents.suppression import Suppressions
from schemas import (
    Alert,
    Command,
    DeadLetter,
    DecodeError,
    DeliveryReceipt,
    IncidentEvent,
    Notification,
    decode,
    encode,
)
from schemas.config import Config
from streams.agents.broadcast import SuppressionFollower, apply_record
from streams.agents.gaps import GapFiller
from streams.agents.metrics import AgentMetrics
from streams.catalog import Catalog
from streams.settings import KafkaSettings

log = structlog.get_logger(__name__)
Clock = Callable[[], datetime]


def _now() -> datetime:
    return datetime.now(UTC)


def build_app(settings: KafkaSettings, cfg: Config, *, app_id: str = "tocsin-agents",
              tick_every: float = 1.0, clock: Clock = _now, datadir: str | None = None,
              metrics: AgentMetrics | None = None) -> faust.App:  # fmt: skip
    catalog = Catalog(settings)
    partitions = catalog.get("incident-work").partitions
    app = faust.App(
        f"{settings.topic_prefix}{app_id}",
        broker=[f"kafka://{h}" for h in settings.bootstrap_servers.split(",")],
        store="memory://",
        topic_partitions=partitions,
        processing_guarantee="at_least_once",
        broker_commit_interval=0.5,
        # a crashed worker's partitions move after 10 s, not faust's default 60 s
        broker_session_timeout=10.0,
        broker_heartbeat_interval=2.0,
        web_enabled=False,
        datadir=datadir or f"/tmp/tocsin-agents-{settings.topic_prefix}",
        producer_acks=-1,
        key_serializer="raw",
        value_serializer="raw",
    )

    def raw_topic(name: str) -> faust.TopicT:
        return app.topic(
            catalog.name(name), key_type=bytes, value_type=bytes, key_serializer="raw",
            value_serializer="raw", partitions=catalog.get(name).partitions,
        )  # fmt: skip

    alerts, commands, work = raw_topic("alerts"), raw_topic("commands"), raw_topic("incident-work")
    receipts, suppressions = raw_topic("receipts"), raw_topic("suppressions")
    events_out, incidents_out = raw_topic("incident-events"), raw_topic("incidents")
    notifications_out, dlq = raw_topic("notifications"), raw_topic("deadletter")
    groups = app.Table("groups", default=None, partitions=partitions, key_type=bytes,
                       value_type=bytes)  # fmt: skip
    sup = Suppressions.from_config(cfg)
    follower = SuppressionFollower(settings, catalog.name("suppressions"),
                                   catalog.get("suppressions").partitions, sup)  # fmt: skip
    ticked: dict[bytes, str] = {}

    async def dead_letter(raw: bytes, source: str, error: str, reason: str = "validation") -> None:
        letter = DeadLetter(source_topic=source, value=raw, reason=reason, error=error[:8000],
                            stage="agents", worker="agents")  # fmt: skip
        await dlq.send(key=None, value=encode(letter))
        if metrics is not None:
            metrics.dead_letters.labels(topic=source, reason=reason).inc()

    async def broadcast(key: bytes, value: bytes | None) -> None:
        apply_record(sup, key, value)  # this worker honours it at once
        await suppressions.send(key=key, value=value)

    fillers: list[GapFiller] = []

    @app.on_partitions_revoked.connect
    def _moved(*_: Any, **__: Any) -> None:
        for filler in fillers:
            filler.forget()

    async def records(
        stream: faust.StreamT[bytes],
    ) -> AsyncIterator[tuple[bytes | None, bytes, int]]:
        """(key, value, offset) of every record of the agent's partitions, each once, in order,
        including those faust skipped over (see gaps.py)."""
        filler = GapFiller(settings, app.conf.id)
        fillers.append(filler)
        async for event in stream.events():
            tp, offset = event.message.tp, event.message.offset
            missing = await filler.missing(tp.topic, tp.partition, offset)
            if missing is None:
                continue  # a redelivery of what this worker already processed
            for gap_key, value, gap_offset in missing:
                log.warning("gap_record_recovered", topic=tp.topic, partition=tp.partition,
                            offset=gap_offset)  # fmt: skip
                if metrics is not None:
                    metrics.gap_records.labels(topic=tp.topic).inc()
                yield gap_key, value, gap_offset
            yield event.key, event.value, offset

    @app.agent(alerts)
    async def route_alerts(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        async for _, raw, _ in records(stream):
            try:
                alert = decode(Alert, raw)
            except DecodeError as exc:
                await dead_letter(raw, catalog.name("alerts"), str(exc))
                yield None
                continue
            if sup.is_source(alert.labels):  # alerts are keyed by fingerprint: one writer each
                firing = alert.status == "firing"
                await broadcast(f"src:{alert.fingerprint}".encode(),
                                orjson.dumps(alert.labels) if firing else None)  # fmt: skip
            for routed in route(cfg, alert.labels):
                gk = routed.group_key(alert.labels)
                msg = {"t": "alert", "gk": gk, "route": routed.decision.__dict__,
                       "alert": raw.decode()}  # fmt: skip
                await work.send(key=group_id(gk).encode(), value=orjson.dumps(msg))
            yield None

    @app.agent(commands)
    async def route_commands(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        async for _, raw, _ in records(stream):
            try:
                cmd = decode(Command, raw)
            except DecodeError as exc:
                await dead_letter(raw, catalog.name("commands"), str(exc))
                yield None
                continue
            if cmd.action == "silence" and cmd.silence is not None:
                await broadcast(
                    f"sil:{cmd.event_id}".encode(), cmd.silence.model_dump_json().encode()
                )
                log.info("silence_created", id=cmd.event_id, author=cmd.silence.author,
                         ends_at=cmd.silence.ends_at.isoformat())  # fmt: skip
                yield None
                continue
            gid = group_of(cmd.incident_id or "")
            if gid is None:
                why = f"Command.incident_id: {cmd.incident_id!r} is not an incident id"
                await dead_letter(raw, catalog.name("commands"), why)
            else:
                msg = {"t": "command", "cmd": raw.decode()}
                await work.send(key=gid.encode(), value=orjson.dumps(msg))
            yield None

    @app.agent(receipts)
    async def route_receipts(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        async for _, raw, _ in records(stream):
            try:
                receipt = decode(DeliveryReceipt, raw)
            except DecodeError as exc:
                await dead_letter(raw, catalog.name("receipts"), str(exc))
                yield None
                continue
            gid = group_of(receipt.incident_id)
            if gid is None:
                why = f"DeliveryReceipt.incident_id: {receipt.incident_id!r} is not an incident id"
                await dead_letter(raw, catalog.name("receipts"), why)
            else:
                msg = {"t": "receipt", "receipt": raw.decode()}
                await work.send(key=gid.encode(), value=orjson.dumps(msg))
            yield None

    @app.agent(work)
    async def decide(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        async for maybe_key, raw, offset in records(stream):
            key = maybe_key or b""  # incident-work is always keyed by group id
            stored = groups.get(key)
            st = from_dict(orjson.loads(stored)) if stored else None
            if st is not None and offset <= st.input_offset:
                yield None  # a replay of what the table already holds
                continue
            now = clock()
            msg: dict[str, Any] = orjson.loads(raw)
            kind = msg["t"]
            if kind == "alert":
                alert = decode(Alert, msg["alert"])
                st = st or GroupState(group_key=msg["gk"], route=Route(**msg["route"]))
                outcome = on_alert(st, alert, now, cfg, sup)
                if outcome.suppressed is not None:
                    log.info("alert_suppressed", fingerprint=alert.fingerprint,
                             reason=outcome.suppressed)  # fmt: skip
                    if metrics is not None:
                        metrics.suppressed.inc()
            elif st is None:
                yield None
                continue
            elif kind == "command":
                outcome = on_command(st, decode(Command, msg["cmd"]), now, cfg)
            elif kind == "receipt":
                outcome = on_receipt(st, decode(DeliveryReceipt, msg["receipt"]), now)
            else:
                ticked.pop(key, None)
                if expired(st, now, cfg):
                    groups.pop(key, None)  # resolved and past its reopen window: forget it
                    yield None
                    continue
                outcome = on_tick(st, now, cfg, sup)
            await _emit(outcome)
            st.input_offset = offset
            groups[key] = orjson.dumps(to_dict(st))
            yield None

    async def _emit(outcome: Outcome) -> None:
        """Send the effects and wait for Kafka's acknowledgement of all of them."""
        if not outcome.effects:
            return
        pending = [await _send(effect) for effect in outcome.effects]
        await asyncio.gather(*pending)
        if metrics is not None:
            metrics.record(outcome.effects)

    async def _send(effect: Effect) -> Any:
        if isinstance(effect, IncidentEvent):
            target = events_out
        elif isinstance(effect, Notification):
            target = notifications_out
        else:
            target = incidents_out
        return await target.send(key=effect.incident_id.encode(), value=encode(effect))

    @app.timer(interval=tick_every)  # type: ignore[untyped-decorator]
    async def tick() -> None:
        now = clock()
        sup.expire(now)
        for key, stored in list(groups.items()):
            if not stored:
                continue
            deadline = next_deadline(_deadline_view(orjson.loads(stored)), cfg)
            if deadline is None or deadline > now:
                continue
            stamp = deadline.isoformat()
            if ticked.get(key) == stamp:
                continue  # a tick for this deadline is already on its way
            ticked[key] = stamp
            await work.send(key=key, value=b'{"t":"tick"}')

    @app.task  # type: ignore[untyped-decorator]
    async def follow_suppressions() -> None:
        await follower.run()

    app.conf.tocsin_started = time.time()
    app.conf.tocsin_settings = settings
    app.conf.tocsin_follower = follower
    return app


_DEADLINES = ("notify_at", "next_escalation_at", "snoozed_until", "update_at", "remind_at",
              "flap_clear_at", "resolved_at")  # fmt: skip


def _deadline_view(doc: dict[str, Any]) -> GroupState:
    """Only the fields next_deadline reads, without rebuilding members."""
    st = GroupState(group_key="")
    st.status = doc["status"]
    for field in _DEADLINES:
        setattr(st, field, datetime.fromisoformat(doc[field]) if doc.get(field) else None)
    return st

"""`tocsin run agents`: alerts and commands in; incidents, the ledger and the outbox out.

Three agents and a timer:
- alerts are decoded, routed, and re-keyed by incident group onto `incident-work`;
- commands are re-keyed the same way (the group id is part of every incident id);
- the work agent owns the `groups` table (changelog-backed, co-partitioned with
  `incident-work`), applies the pure core and emits its effects;
- a timer finds groups whose deadline passed (group_wait, escalation, snooze) and
  sends them a tick through `incident-work`, so every table write happens inside the
  agent that owns the partition and the core always gets `now` from the runtime.

Guarantee: at-least-once, made effectively-once. The table remembers the ids of the
events it applied (a redelivered alert or command is a no-op), and every effect has a
deterministic id (IncidentEvent: incident:seq; Notification: incident/generation/step/
target), so the notifier and other consumers deduplicate what a crash re-emits.
faust's exactly_once mode is not used: its known duplicate-output and recovery bugs
are worse than deduplicating by id.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import faust
import orjson
import structlog

from processors.incidents.lifecycle import (
    group_id,
    group_of,
    next_deadline,
    on_alert,
    on_command,
    on_tick,
)
from processors.incidents.routing import route, silenced
from processors.incidents.state import GroupState, Route, from_dict, to_dict
from schemas import (
    Alert,
    Command,
    DeadLetter,
    DecodeError,
    Incident,
    IncidentEvent,
    Notification,
    decode,
    encode,
)
from schemas.config import Config
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
            value_serializer="raw", partitions=partitions,
        )  # fmt: skip

    alerts, commands, work = raw_topic("alerts"), raw_topic("commands"), raw_topic("incident-work")
    events_out, incidents_out = raw_topic("incident-events"), raw_topic("incidents")
    notifications_out, dlq = raw_topic("notifications"), raw_topic("deadletter")
    # raw bytes in and out: the app's default serializers are set to raw below
    groups = app.Table("groups", default=None, partitions=partitions, key_type=bytes,
                       value_type=bytes)  # fmt: skip
    ticked: dict[bytes, str] = {}

    async def dead_letter(raw: bytes, source: str, error: str, reason: str = "validation") -> None:
        letter = DeadLetter(source_topic=source, value=raw, reason=reason, error=error[:8000],
                            stage="agents", worker="agents")  # fmt: skip
        await dlq.send(key=None, value=encode(letter))
        if metrics is not None:
            metrics.dead_letters.labels(topic=source, reason=reason).inc()

    @app.agent(alerts)
    async def route_alerts(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        async for raw in stream:
            try:
                alert = decode(Alert, raw)
            except DecodeError as exc:
                await dead_letter(raw, catalog.name("alerts"), str(exc))
                yield None
                continue
            for routed in route(cfg, alert.labels):
                gk = routed.group_key(alert.labels)
                msg = {"t": "alert", "gk": gk, "route": routed.decision.__dict__,
                       "alert": raw.decode()}  # fmt: skip
                await work.send(key=group_id(gk).encode(), value=orjson.dumps(msg))
            yield None

    @app.agent(commands)
    async def route_commands(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        async for raw in stream:
            try:
                cmd = decode(Command, raw)
            except DecodeError as exc:
                await dead_letter(raw, catalog.name("commands"), str(exc))
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

    @app.agent(work)
    async def decide(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        async for key, raw in stream.items():
            msg: dict[str, Any] = orjson.loads(raw)
            stored = groups.get(key)
            now = clock()
            st = from_dict(orjson.loads(stored)) if stored else None
            if msg["t"] == "alert":
                alert = decode(Alert, msg["alert"])
                st = st or GroupState(group_key=msg["gk"], route=Route(**msg["route"]))
                reason = silenced(cfg, alert.labels, now)
                if reason and not st.open:
                    log.info("alert_silenced", fingerprint=alert.fingerprint, reason=reason)
                    yield None
                    continue
                outcome = on_alert(st, alert, now, cfg)
            elif st is None:
                yield None
                continue
            elif msg["t"] == "command":
                outcome = on_command(st, decode(Command, msg["cmd"]), now, cfg)
            else:
                outcome = on_tick(st, now, cfg)
                ticked.pop(key, None)
            groups[key] = orjson.dumps(to_dict(st))
            for effect in outcome.effects:
                await _emit(effect)
            if metrics is not None:
                metrics.record(outcome.effects)
            yield None

    async def _emit(effect: IncidentEvent | Notification | Incident) -> None:
        if isinstance(effect, IncidentEvent):
            target = events_out
        elif isinstance(effect, Notification):
            target = notifications_out
        else:
            target = incidents_out
        await target.send(key=effect.incident_id.encode(), value=encode(effect))

    @app.timer(interval=tick_every)  # type: ignore[untyped-decorator]
    async def tick() -> None:
        now = clock()
        for key, stored in list(groups.items()):
            if not stored:
                continue
            doc = orjson.loads(stored)
            deadline = next_deadline(_deadline_view(doc))
            if deadline is None or deadline > now:
                continue
            stamp = deadline.isoformat()
            if ticked.get(key) == stamp:
                continue  # a tick for this deadline is already on its way
            ticked[key] = stamp
            await work.send(key=key, value=b'{"t":"tick"}')

    app.conf.tocsin_started = time.time()
    return app


def _deadline_view(doc: dict[str, Any]) -> GroupState:
    """Only the fields next_deadline reads, without rebuilding members."""
    st = GroupState(group_key="")
    st.status = doc["status"]
    for field in ("notify_at", "next_escalation_at", "snoozed_until"):
        setattr(st, field, datetime.fromisoformat(doc[field]) if doc[field] else None)
    return st

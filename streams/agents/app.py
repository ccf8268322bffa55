"""`tocsin run agents`: alerts and commands in; incidents, the ledger and the outbox out.

One agent, one routing task, two timers:
- the router (router.py: a confluent-kafka consumer group of its own, `<app>-router`)
  decodes alerts, routes them and re-keys them by incident group onto `incident-work`,
  one bundle record per partition per batch; alerts that can inhibit others are also
  broadcast on `suppressions`. Commands and delivery receipts are re-keyed the same way
  (the group id is part of every incident id); silences are broadcast on `suppressions`;
- the work agent `decide` owns the `groups` table (changelog-backed, co-partitioned with
  `incident-work`) and decides in batches (decide.py): the pure core for every event of
  the batch, all effects sent and acknowledged together, then one state write per group;
- a timer finds groups whose deadline passed (group_wait, group_interval, escalation,
  repeat_interval, snooze, flapping, eviction) and sends them a tick through
  `incident-work`, so every table write happens inside the agent that owns the
  partition and the core always gets `now` from the runtime;
- a task follows `suppressions` into every worker (see broadcast.py).
Tenants: an alert is routed, grouped, silenced and inhibited with its own tenant's
configuration and suppressions only (processors/incidents/tenants.py), its group key
starts with its tenant, and every record derived from it carries it. An alert or a
command of a tenant the configuration does not know, and a command whose tenant is not
its incident's, is dead-lettered with the reason, never applied.
Hot outputs (re-keyed work, effects, the changelog) go through one confluent-kafka
producer (outbox.py) with one acknowledgement per batch.

Guarantee: at-least-once, made effectively-once (processing_guarantee="at_least_once").
- Effects are written, and acknowledged by Kafka (acks=all), BEFORE the group's new
  state is written to the table: a crash can lose a state write whose effects landed
  (the replay re-decides on the old state and re-emits the same ids), never effects
  whose state landed. The state writes are acknowledged in turn before the batch's
  offsets can be committed, and the router commits an input batch only once what it
  re-keyed is acknowledged.
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
import os
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any, NoReturn, cast

import faust
import orjson
import structlog
from faust.types import EventT

from processors.incidents.ledger import Effect, group_of
from processors.incidents.tenants import Tenants
from schemas import (
    Alert,
    Command,
    DecodeError,
    DeliveryReceipt,
    IncidentEvent,
    Notification,
    decode,
)
from schemas.codec import encode_fields
from schemas.config import Config, Installation
from streams.agents.broadcast import SuppressionFollower, apply_record, suppression_key
from streams.agents.bundle import TICK, alert_bundles, work_value
from streams.agents.changelogs import unrestored
from streams.agents.decide import Groups, Work, latest_snapshots
from streams.agents.gaps import GapFiller
from streams.agents.heartbeats import install as install_heartbeats
from streams.agents.metrics import AgentMetrics
from streams.agents.outbox import Acks, Outbox
from streams.agents.places import Place, Places
from streams.agents.router import Pending, Router
from streams.catalog import Catalog
from streams.kafka_security import faust_options
from streams.runtime.deadletters import dead_letter as dead_letter_record
from streams.settings import KafkaSettings

log = structlog.get_logger(__name__)
Clock = Callable[[], datetime]
# records per batch, and how long a batch waits to fill: a transition waits at most
# WITHIN before it is decided, so the first page of a critical alert stays well under 1 s.
# faust's take_events waits the full WITHIN on every batch (records that came while the
# last one was decided are held back until it is done), and the router's bundles make
# batches of a few records, never BATCH: WITHIN is idle time per batch, so a longer one
# holds idle workers at a share of a core each and lowers throughput (docs/benchmarks.md)
BATCH, WITHIN = 2000, 0.005
YIELD_EVERY = 0.02  # s of deciding before the loop's other tasks get a turn
# the longest a request of faust's clients may wait for its answer (see build_app)
REQUEST_TIMEOUT_S = 30.0
# partition -> routed alerts (where, the alert, size of the record)
Bundles = dict[int, list[tuple[Place, Alert, int]]]
Later = list[Callable[[], Awaitable[Any]]]  # sends a batch's routing leaves for its end


def _now() -> datetime:
    return datetime.now(UTC)


# lifecycle steps worth a log line each; alert repeats and joins are counted, not logged
_TRAIL = frozenset({"opened", "acknowledged", "escalated", "resolved", "reopened", "snoozed",
                    "assigned", "silenced", "inhibited", "flapping"})  # fmt: skip


def _die(event: str) -> NoReturn:
    """End the process like kill -9: nothing of the failed batch is acked or committed,
    and the partitions' next owner replays it from the last committed offsets."""
    log.exception(event)
    sys.stderr.flush()
    os._exit(70)


def _batches(stream: faust.StreamT[bytes]) -> AsyncIterator[Sequence[EventT[bytes]]]:
    """Up to BATCH events, or what came within WITHIN s; acked once the loop body is done."""
    return cast("faust.Stream[bytes]", stream).take_events(BATCH, within=WITHIN)


def build_app(settings: KafkaSettings, cfg: Config | Installation, *,
              app_id: str = "tocsin-agents",
              tick_every: float = 1.0, clock: Clock = _now, datadir: str | None = None,
              metrics: AgentMetrics | None = None) -> faust.App:  # fmt: skip
    catalog = Catalog(settings)
    partitions = catalog.get("incident-work").partitions
    app = faust.App(
        f"{settings.topic_prefix}{app_id}",
        # broker, TLS and SASL for faust's consumer, producer and changelog
        **faust_options(settings),
        store="memory://",
        topic_partitions=partitions,
        # its changelogs hold every incident's state: replicated as tocsin's own topics
        topic_replication_factor=settings.replication_factor,
        processing_guarantee="at_least_once",
        broker_commit_interval=0.5,
        # no leader-only timers here, so no leader election: its topic would be one more
        # that faust creates just before subscribing (the race changelogs.py describes)
        topic_disable_leader=True,
        # a crashed worker's partitions move after 10 s, not faust's default 60 s
        broker_session_timeout=10.0,
        broker_heartbeat_interval=2.0,
        # a node that hangs answers nothing: a commit, fetch or changelog write sent to it
        # is given up after this long (as Java's clients do) and sent where the partition
        # or the group moved, not after faust's far longer defaults
        broker_request_timeout=REQUEST_TIMEOUT_S,
        producer_request_timeout=REQUEST_TIMEOUT_S,
        # shorter than the request timeout: the coordinator answers a join before the
        # member gives up waiting for it (aiokafka waits on a join no longer than on any
        # other request)
        broker_rebalance_timeout=REQUEST_TIMEOUT_S - 5,
        web_enabled=False,
        datadir=datadir or f"/tmp/tocsin-agents-{settings.topic_prefix}",
        producer_acks=-1,
        # a few ms of linger turns one produce request per record into one per batch
        producer_linger=0.005,
        key_serializer="raw",
        value_serializer="raw",
    )

    def raw_topic(name: str) -> faust.TopicT:
        return app.topic(
            catalog.name(name), key_type=bytes, value_type=bytes, key_serializer="raw",
            value_serializer="raw", partitions=catalog.get(name).partitions,
        )  # fmt: skip

    work, suppressions = raw_topic("incident-work"), raw_topic("suppressions")
    dlq = raw_topic("deadletter")
    groups = app.Table("groups", default=None, partitions=partitions, key_type=bytes,
                       value_type=bytes,
                       extra_topic_configs=catalog.changelog_configs())  # fmt: skip
    inst = cfg if isinstance(cfg, Installation) else Installation.single(cfg)
    tenants = Tenants(inst.tenants)
    follower = SuppressionFollower(settings, catalog.name("suppressions"),
                                   catalog.get("suppressions").partitions, tenants)  # fmt: skip
    state = Groups(tenants, None, clock)
    changelog = groups.changelog_topic.get_topic_name()
    outbox = Outbox(settings)  # incident-work and the effects (see outbox.py)
    heartbeats = install_heartbeats(app, settings, inst, outbox, clock, tick_every,
                                    metrics.registry if metrics is not None else None)  # fmt: skip
    work_topic, events_topic = catalog.name("incident-work"), catalog.name("incident-events")
    incidents_topic, notifications_topic = catalog.name("incidents"), catalog.name("notifications")

    async def dead_letter(raw: bytes, source: str, error: str, reason: str = "validation") -> Any:
        letter = dead_letter_record(metrics, source=source, value=raw, reason=reason, error=error,
                                    stage="agents", worker="agents", logged=False)  # fmt: skip
        return await dlq.send(key=None, value=letter)

    async def broadcast(key: bytes, value: bytes | None) -> Any:
        apply_record(tenants, key, value)  # this worker honours it at once
        return await suppressions.send(key=key, value=value)

    def _stranger(tenant: str, what: str) -> str | None:
        """Why a record of `tenant` cannot be handled here, if it cannot."""
        if tenants.known(tenant):
            return None
        return (f"{what}.tenant: unknown tenant {tenant!r} (configured: "
                f"{', '.join(sorted(tenants))})")  # fmt: skip

    def _route_alert(raw: bytes, bundles: Bundles, later: Later) -> None:
        """Not a coroutine (one call per alert): the rare dead letter or broadcast is
        sent once the batch is routed, in order."""
        try:
            alert = decode(Alert, raw)
        except DecodeError as exc:
            later.append(partial(dead_letter, raw, alerts_topic, str(exc)))
            return
        if (why := _stranger(alert.tenant, "Alert")) is not None:
            later.append(partial(dead_letter, raw, alerts_topic, why, "tenant"))
            return
        watched = heartbeats.watches(alert)
        if watched is not None:  # a heartbeat's ping (Prometheus' Watchdog), not an incident
            if alert.status == "firing":
                later.append(partial(heartbeats.send_ping, alert, watched))
            return
        source, where = places.of(alert.labels, alert.tenant)
        if source:  # alerts are keyed by fingerprint: one writer each
            firing = alert.status == "firing"
            labels = orjson.dumps(alert.labels) if firing else None
            key = suppression_key(alert.tenant, "src", alert.fingerprint)
            later.append(partial(broadcast, key, labels))
        for place in where:
            bundles.setdefault(place.partition, []).append((place, alert, len(raw)))

    async def _route_command(raw: bytes, acks: Acks, pending: Pending) -> None:
        try:
            cmd = decode(Command, raw)
        except DecodeError as exc:
            pending.append(await dead_letter(raw, catalog.name("commands"), str(exc)))
            return
        if (why := _stranger(cmd.tenant, "Command")) is not None:
            pending.append(await dead_letter(raw, catalog.name("commands"), why, "tenant"))
            return
        # silences and overrides act within the command's own tenant only
        if cmd.action == "silence" and cmd.silence is not None:
            spec = cmd.silence.model_dump_json().encode()
            pending.append(await broadcast(suppression_key(cmd.tenant, "sil", cmd.event_id),
                                           spec))  # fmt: skip
            log.info("silence_created", id=cmd.event_id, author=cmd.silence.author,
                     tenant=cmd.tenant, ends_at=cmd.silence.ends_at.isoformat())  # fmt: skip
            return
        if cmd.action == "expire_silence" and cmd.silence_id:
            pending.append(await broadcast(suppression_key(cmd.tenant, "sil", cmd.silence_id),
                                           None))  # fmt: skip
            log.info("silence_expired", id=cmd.silence_id, actor=cmd.actor, tenant=cmd.tenant)
            return
        if cmd.action == "override" and cmd.override is not None:
            spec = cmd.override.model_dump_json().encode()
            pending.append(await broadcast(suppression_key(cmd.tenant, "ovr", cmd.event_id),
                                           spec))  # fmt: skip
            log.info("oncall_override", id=cmd.event_id, schedule=cmd.override.schedule,
                     user=cmd.override.user, tenant=cmd.tenant)  # fmt: skip
            return
        if cmd.action == "status":  # status pages: the projector applies it
            return
        gid = group_of(cmd.incident_id or "")
        if gid is None:
            why = f"Command.incident_id: {cmd.incident_id!r} is not an incident id"
            pending.append(await dead_letter(raw, catalog.name("commands"), why))
        else:
            await outbox.send(acks, work_topic, gid.encode(), work_value("command", raw))

    async def _route_receipt(raw: bytes, acks: Acks, pending: Pending) -> None:
        try:
            receipt = decode(DeliveryReceipt, raw)
        except DecodeError as exc:
            pending.append(await dead_letter(raw, catalog.name("receipts"), str(exc)))
            return
        gid = group_of(receipt.incident_id)
        if gid is None:
            why = f"DeliveryReceipt.incident_id: {receipt.incident_id!r} is not an incident id"
            pending.append(await dead_letter(raw, catalog.name("receipts"), why))
        else:
            await outbox.send(acks, work_topic, gid.encode(), work_value("receipt", raw))

    alerts_topic = catalog.name("alerts")
    handlers = {catalog.name("commands"): _route_command, catalog.name("receipts"): _route_receipt}
    work_partitions = catalog.get("incident-work").partitions
    places = Places(tenants, None, work_partitions)

    async def _route(batch: Sequence[tuple[str, bytes]]) -> None:
        acks, pending = outbox.acks(), cast(Pending, [])  # pending: faust's dead letters
        bundles: Bundles = {}
        later: Later = []
        for topic, raw in batch:
            if topic == alerts_topic:
                _route_alert(raw, bundles, later)
            else:
                await handlers[topic](raw, acks, pending)
        for send in later:
            pending.append(await send())
        for part, items in bundles.items():  # one record per partition (and per ~256 KB)
            rows = [(p.group_id, p.group_key, p.route, a, n) for p, a, n in items]
            for key, value in alert_bundles(rows):
                await outbox.send(acks, work_topic, key, value, part)
        await asyncio.gather(acks.all(), *pending)

    router = Router(settings, f"{settings.topic_prefix}{app_id}-router",
                    [alerts_topic, *handlers], _route,
                    lag=metrics.lag if metrics is not None else None)  # fmt: skip

    @app.task  # type: ignore[untyped-decorator]
    async def route_inputs() -> None:
        try:
            await router.run()
        except asyncio.CancelledError:
            raise
        except Exception:  # a worker that stopped routing must not look healthy
            _die("router_failed")

    @app.agent(work)
    async def decide(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        # take_events batches may mix partitions: each record carries its own partition
        # and offset, and each table write goes to the partition of its group's records
        async for events in _batches(stream):
            # take_events acks a batch once the loop moves on OR the loop is left (an
            # exception, a cancelled task at shutdown), and acked offsets get committed:
            # a batch is therefore always finished, from its gaps on, even when the worker
            # stops meanwhile, and a batch that fails ends the process before anything is
            # acked
            step = asyncio.ensure_future(_decide_events(events))
            try:
                await asyncio.shield(step)
            except asyncio.CancelledError:
                await step  # stopping: finish this batch first
                raise
            except Exception:
                _die("decide_failed")
            yield None

    filler = GapFiller(settings, app.conf.id)

    @app.on_partitions_revoked.connect
    def _moved(*_: Any, **__: Any) -> None:
        filler.forget()  # partitions may have moved, their positions with them

    # each table's state follows the partitions of one topic (see changelogs.py)
    follows = {changelog: work_topic, heartbeats.changelog: heartbeats.topic}

    @app.on_partitions_assigned.connect
    def _restorable(*args: Any, **__: Any) -> None:
        # (the app, the partitions assigned)
        missing = unrestored(follows, args[1], app.assignor.assigned_actives())
        if missing:
            # deciding them on an empty table would open every group's incident again
            log.error("changelog_not_assigned", partitions=missing,
                      remedy="restarting: a fresh start reads the topics again")  # fmt: skip
            sys.stderr.flush()
            os._exit(70)

    async def _with_gaps(events: Sequence[EventT[bytes]]) -> list[Work]:
        """The batch's records, each once and in order, with those faust skipped over put
        back before the record that follows them (see gaps.py)."""
        batch: list[Work] = []
        for ev in events:
            tp, offset = ev.message.tp, ev.message.offset
            missing = await filler.missing(tp.topic, tp.partition, offset)
            if missing is None:
                continue  # a redelivery of what this worker already processed
            for key, value, gap_offset in missing:
                log.warning("gap_record_recovered", topic=tp.topic, partition=tp.partition,
                            offset=gap_offset)  # fmt: skip
                if metrics is not None:
                    metrics.gap_records.labels(topic=tp.topic).inc()
                batch.append(Work(key or b"", value, tp.partition, gap_offset))
            batch.append(Work(cast(bytes, ev.key), cast(bytes, ev.value), tp.partition, offset))
        return batch

    async def _decide_events(events: Sequence[EventT[bytes]]) -> None:
        await _decide_batch(await _with_gaps(events))

    async def _decide_batch(batch: list[Work]) -> None:
        try:
            step = state.deciding(groups)
            yielded = time.monotonic()
            for rec in batch:
                step.add(rec)
                if time.monotonic() - yielded > YIELD_EVERY:
                    # a batch under backlog takes seconds: the router (whose bundles the
                    # other workers' decide waits for) and the timers run in between
                    await asyncio.sleep(0)
                    yielded = time.monotonic()
            decided = step.done()
            await _emit(decided.effects)  # acknowledged by Kafka ...
            # (refused commands too: dead-lettered before their offsets can commit)
            letters = [await dead_letter(raw, catalog.name("commands"), why, "tenant")
                       for raw, why in decided.refused]  # fmt: skip
            await asyncio.gather(*letters)
            # ... before the state that implies them; the state is acknowledged too
            # before the batch's offsets can be committed (faust flushes only its own
            # producer before a commit)
            acks = outbox.acks()
            for w in state.written(decided):
                if w.value is None:
                    groups.data.pop(w.key, None)
                else:
                    groups.data[w.key] = w.value
                if not outbox.put(acks, changelog, w.key, w.value, w.partition):
                    await outbox.send(acks, changelog, w.key, w.value, w.partition)
            await acks.all()
        except BaseException:
            state.forget()
            raise
        if metrics is not None and decided.suppressed:
            metrics.suppressed.inc(decided.suppressed)

    async def _emit(effects: list[Effect]) -> None:
        """Send the effects and wait for Kafka's acknowledgement of all of them."""
        if not effects:
            return
        acks = outbox.acks()
        for effect in latest_snapshots(effects):
            topic, key, value = _record(effect)
            if not outbox.put(acks, topic, key, value):
                await outbox.send(acks, topic, key, value)
        await acks.all()
        if metrics is not None:
            metrics.record(effects)
        for effect in effects:  # the trail alert -> incident -> page, once Kafka has it
            if isinstance(effect, Notification):
                log.info("notification_requested", notification_id=effect.notification_id,
                         incident_id=effect.incident_id, kind=effect.kind,
                         channel=effect.channel, target=effect.target,
                         escalation_level=effect.escalation_level)  # fmt: skip
            elif isinstance(effect, IncidentEvent) and effect.kind in _TRAIL:
                log.info("incident_" + effect.kind, incident_id=effect.incident_id,
                         seq=effect.seq, actor=effect.actor,
                         fingerprint=effect.details.get("fingerprint"))  # fmt: skip

    def _record(effect: Effect) -> tuple[str, bytes, bytes]:
        if isinstance(effect, IncidentEvent):
            target = events_topic
        elif isinstance(effect, Notification):
            target = notifications_topic
        else:
            target = incidents_topic
        return target, effect.incident_id.encode(), encode_fields(effect)

    @app.timer(interval=tick_every)  # type: ignore[untyped-decorator]
    async def tick() -> None:
        now = clock()
        tenants.expire(now)
        due = state.due(dict(groups.items()), now)
        acks = outbox.acks()
        for key in due:
            await outbox.send(acks, work_topic, key, TICK)
        await acks.all()

    @app.task  # type: ignore[untyped-decorator]
    async def follow_suppressions() -> None:
        await follower.run()

    app.conf.tocsin_started = time.time()
    app.conf.tocsin_settings = settings
    app.conf.tocsin_follower = follower
    # what readiness and the log say about Kafka while the broker is away
    waits = [router.wait, outbox.wait, filler.wait, follower.wait]
    app.conf.tocsin_waits = waits + ([heartbeats.gap_wait] if heartbeats.gap_wait else [])
    return app

"""Suppressions every agents worker must see, whatever partitions it owns.

Silences created from Slack or the CLI and the labels of firing inhibition
sources are global facts, but the incident groups they mute are spread over
workers by partition. faust's GlobalTable is not used for this: with several
workers it stops following its changelog on some of them (faust-streaming
issue #283). Instead each worker reads the compacted `suppressions` topic
from the beginning with its own group-less consumer (every partition assigned)
and applies it to its in-memory `Suppressions`. Writers also apply their own
writes at once, so the worker that saw a silence command honours it immediately.

Every record belongs to one tenant and is applied to that tenant's suppressions (or
schedules) only: keys are `<kind>:<id>` for the provider's own tenant (as before
tenants existed) and `t:<tenant>:<kind>:<id>` for every other.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

import orjson
import structlog
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from processors.incidents.suppression import Suppressions
from processors.incidents.tenants import DEFAULT, Tenants
from schemas.commands import OnCallOverride, SilenceSpec
from streams.kafka import KafkaWait, make_consumer, watermarks
from streams.runtime.renewal import Hearing
from streams.settings import KafkaSettings

log = structlog.get_logger(__name__)


# an on-call override made at run time (None: withdrawn), by its id
OnOverride = Callable[[str, OnCallOverride | None], None]


def suppression_key(tenant: str, kind: str, ident: str) -> bytes:
    """The `suppressions` key of a record of `tenant` (kind: src, sil or ovr)."""
    return (f"{kind}:{ident}" if tenant == DEFAULT else f"t:{tenant}:{kind}:{ident}").encode()


def split_key(key: bytes) -> tuple[str, str, str]:
    """(tenant, kind, id) of a `suppressions` key."""
    text = key.decode()
    tenant = DEFAULT
    if text.startswith("t:"):
        tenant, _, text = text[2:].partition(":")
    kind, _, ident = text.partition(":")
    return tenant, kind, ident


def apply_record(target: Suppressions | Tenants, key: bytes, value: bytes | None,
                 on_override: OnOverride | None = None) -> None:  # fmt: skip
    """One record of the `suppressions` topic (a tombstone ends an inhibition source, or
    a silence expired before its end), applied to its own tenant only (a bare
    Suppressions is the provider's own tenant's)."""
    tenant, kind, ident = split_key(key)
    if isinstance(target, Tenants):
        sup = target.suppressions(tenant)
        if kind == "ovr":
            ovr = OnCallOverride.model_validate_json(value) if value else None
            target.override(tenant, ident, ovr)
            return
    elif tenant != DEFAULT:
        return
    else:
        sup = target
    if kind == "src":
        sup.set_source(ident, orjson.loads(value) if value else None)
    elif kind == "sil" and value:
        sup.add_silence(ident, SilenceSpec.model_validate_json(value))
    elif kind == "sil":  # expired by hand
        sup.remove_silence(ident)
    elif kind == "ovr" and on_override is not None:
        on_override(ident, OnCallOverride.model_validate_json(value) if value else None)


class SuppressionFollower:
    """Follows the `suppressions` topic into `sup`; `caught_up` once the backlog is read.
    A consumer that stops hearing the broker is replaced where it had read to (renewal.py:
    `Hearing`): silences and overrides made after a broker restart are honoured."""

    def __init__(self, settings: KafkaSettings, topic: str, partitions: int,
                 sup: Suppressions | Tenants,
                 on_override: OnOverride | None = None) -> None:  # fmt: skip
        self._sup = sup
        self._on_override = on_override
        self._topic = topic
        self._partitions = partitions
        self._settings = settings
        self._consumer: Consumer | None = None
        self._backlog: dict[int, int] = {}
        self._next: dict[int, int] = {}  # the next offset to read, by partition
        self.caught_up = False
        # readiness and a log line every half minute (not per try) while it cannot follow
        self.wait = KafkaWait("agents/suppressions")
        self.hearing = Hearing(self.wait)

    def _open(self) -> Consumer:
        # a fresh group id and manual assignment: no group, no commits, every partition
        consumer = make_consumer(self._settings, f"tocsin-sup-{uuid.uuid4().hex[:8]}",
                                 **{"isolation.level": "read_uncommitted"})  # fmt: skip
        tps = [TopicPartition(self._topic, p, self._next.get(p, OFFSET_BEGINNING))
               for p in range(self._partitions)]  # fmt: skip
        try:
            if not self.caught_up:
                self._backlog = {}  # what is left of it from where the last consumer read to
                for tp in tps:
                    _, high = watermarks(consumer, tp, 10)
                    if high > max(tp.offset, 0):
                        self._backlog[tp.partition] = high
            consumer.assign(tps)
        except BaseException:
            # closed now, not whenever the collector finds it: a try a second while the
            # topic is missing would otherwise keep several clients' threads alive
            consumer.close()
            raise
        self.caught_up = not self._backlog
        self.hearing.renewed()
        return consumer

    def poll_once(self) -> int:
        """Apply what is there now; never blocks. Returns how many records were applied."""
        if self._consumer is None:
            self._consumer = self._open()
        applied = 0
        for msg in self._consumer.consume(num_messages=1000, timeout=0):
            if msg.error():
                self.hearing.fetch_failed(msg.error())
                continue
            try:
                apply_record(self._sup, msg.key() or b"", msg.value(), self._on_override)
                applied += 1
            except ValueError as exc:  # a bad record must not stop the follower
                log.warning("suppressions_bad_record", error=str(exc)[:500])
            offset = msg.offset()
            part = msg.partition()
            if part is not None and offset is not None:
                self._next[part] = offset + 1
                if self._backlog.get(part, 0) <= offset + 1:
                    self._backlog.pop(part, None)
        if not self._backlog:
            self.caught_up = True
        return applied

    async def run(self, every: float = 0.2, retry_every: float = 1.0) -> None:
        while True:
            try:
                if self._consumer is None:
                    # its start asks for every partition's end, round trips that must not
                    # hold the agents' event loop
                    self._consumer = await asyncio.to_thread(self._open)
                self.poll_once()
                if self._consumer is not None and self.hearing.due():
                    ask = self.hearing.probe
                    reason = await asyncio.to_thread(ask, self._consumer, self._topic)
                    if reason:
                        log.warning("consumer_replaced", consumer="suppressions", reason=reason)
                        await asyncio.to_thread(self.close)
                await asyncio.sleep(every)
            except Exception as exc:  # keep following: the broker or the topic may come
                self.wait.waiting(f"the {self._topic} topic", exc)
                await asyncio.sleep(retry_every)

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None

"""The runtime silences, as the Alertmanager API lists them: built from the silence
commands on the `commands` topic, the same commands the agents apply.

A silence is known by the event id of the `silence` command that created it (the id the
agents file it under); an `expire_silence` command ends it at the command's time. The
view follows the whole topic from its start on a thread and keeps only silence commands,
so it knows every silence created within the topic's retention (30 days), and forgets
expired ones after ``KEEP_EXPIRED`` (Alertmanager keeps them five days). The gateway
also applies its own commands as soon as Kafka acknowledged them, so a silence it
created is listed at once, even before the follower reads it back.

Behind the ``SilenceView`` protocol: a read model in a database can take its place.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, Protocol

from processors.rules.matching import LabelPredicate, compile_matchers
from schemas import Command, DecodeError, decode
from schemas.commands import SilenceSpec

KEEP_EXPIRED = timedelta(days=5)
State = Literal["active", "pending", "expired"]


@dataclass(frozen=True, slots=True)
class KnownSilence:
    id: str
    spec: SilenceSpec
    updated_at: datetime
    matches: LabelPredicate
    tenant: str = "default"

    def state(self, now: datetime) -> State:
        if now >= self.spec.ends_at:
            return "expired"
        return "pending" if now < self.spec.starts_at else "active"


class SilenceView(Protocol):
    def get(self, silence_id: str) -> KnownSilence | None: ...
    def all(self, now: datetime) -> list[KnownSilence]: ...
    def apply(self, cmd: Command) -> None: ...


class Silences:
    """The silences in memory, fed with commands (by a follower of `commands`, see
    ``read_command``, and by the gateway's own writes)."""

    def __init__(self) -> None:
        self._by_id: dict[str, KnownSilence] = {}
        self._lock = threading.Lock()

    def get(self, silence_id: str) -> KnownSilence | None:
        return self._by_id.get(silence_id)

    def all(self, now: datetime) -> list[KnownSilence]:
        with self._lock:
            stale = [k for k, s in self._by_id.items() if s.spec.ends_at < now - KEEP_EXPIRED]
            for k in stale:
                del self._by_id[k]
            return list(self._by_id.values())

    def apply(self, cmd: Command) -> None:
        """Idempotent: the same command applied twice (ours, then read back) changes nothing."""
        with self._lock:
            if cmd.action == "silence" and cmd.silence is not None:
                known = self._by_id.get(cmd.event_id)
                if known is not None and known.updated_at > cmd.at:
                    return  # read back after this gateway already applied its expiry
                self._by_id[cmd.event_id] = KnownSilence(
                    cmd.event_id,
                    cmd.silence,
                    cmd.at,
                    compile_matchers(cmd.silence.matchers),
                    cmd.tenant,
                )
            elif cmd.action == "expire_silence" and cmd.silence_id:
                known = self._by_id.get(cmd.silence_id)
                # another tenant's expiry of this id changes nothing (as in the agents)
                mine = known is not None and known.tenant == cmd.tenant
                if known is not None and mine and known.spec.ends_at > cmd.at:
                    self._by_id[known.id] = _ended(known, cmd.at)


def _ended(known: KnownSilence, at: datetime) -> KnownSilence:
    """Expired at ``at``, as Alertmanager expires: a pending silence ends before it began."""
    starts = min(known.spec.starts_at, at - timedelta(milliseconds=1))
    spec = known.spec.model_copy(update={"starts_at": starts, "ends_at": at})
    return KnownSilence(known.id, spec, at, known.matches, known.tenant)


def expire_command(silence_id: str, actor: str, at: datetime,
                   tenant: str = "default") -> Command:  # fmt: skip
    return Command(event_id=str(uuid.uuid4()), action="expire_silence", silence_id=silence_id,
                   actor=actor, at=at, origin="api", tenant=tenant)  # fmt: skip


def silence_command(spec: SilenceSpec, at: datetime, tenant: str = "default") -> Command:
    """A new silence; its id (the event id) has the UUID form Alertmanager's clients show."""
    return Command(event_id=str(uuid.uuid4()), action="silence", actor=spec.author, at=at,
                   origin="api", silence=spec, tenant=tenant)  # fmt: skip


def read_command(value: bytes | None, apply: Callable[[Command], None]) -> None:
    """One record of `commands` into ``apply`` when it is about a silence."""
    if not value or b"silence" not in value:
        return  # acks, notes...: not worth decoding
    try:
        cmd = decode(Command, value)
    except DecodeError:
        return  # the agents dead-letter it; the view only reads
    if cmd.action in ("silence", "expire_silence"):
        apply(cmd)

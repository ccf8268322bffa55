"""What one request becomes: Kafka records with content-derived event ids, its item
errors, and at most one dead letter.

Idempotency: an item that brings no ``event_id`` gets one derived from the route and
its content (every field but ``event_id`` and ``produced_at``; the tenant is one of
them), and from how many identical items came before it in the same request. A client
that resends a request (after a 429/503, or after fixing the items a 400 named)
writes the same ids, and consumers apply each id once.

The tenant is the credential's: an item that names another tenant is an item error,
never written under either.

Nothing of a request is written before all of it was decoded and checked: an item
too far in time, or whose record would exceed Kafka's record limit, is an item error
like any invalid field, never a 5xx after part of the request was stored.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
from pydantic import BaseModel

from connectors.sources.body import MAX_ITEM_ERRORS
from schemas.codec import _fields
from streams.gateway.writer import MAX_RECORD_BYTES, Record

_FIELDS = orjson.OPT_SORT_KEYS | orjson.OPT_UTC_Z
TOO_LARGE = frozenset({"too_large", "too_many_items"})


@dataclass(frozen=True, slots=True)
class TimeBounds:
    """Event time the gateway accepts: refused here rather than dead-lettered later by
    the processor (ahead) or counted late forever (behind)."""

    now: datetime
    ahead: timedelta
    behind: timedelta

    def check(self, model: str, at: datetime) -> str | None:
        clock = self.now.isoformat(timespec="seconds")
        if at > self.now + self.ahead:
            return (f"{model}.time: {at.isoformat()} is more than {_span(self.ahead)} ahead "
                    f"of the gateway's clock ({clock})")  # fmt: skip
        if at < self.now - self.behind:
            return (f"{model}.time: {at.isoformat()} is more than {_span(self.behind)} "
                    f"in the past (the gateway's clock: {clock})")  # fmt: skip
        return None


def _span(d: timedelta) -> str:
    s = int(d.total_seconds())
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if s >= size and s % size == 0:
            return f"{s // size} {unit}"
    return f"{s} seconds"


@dataclass
class Outcome:
    """The records to write for one request and the answer to give once they are."""

    route: str
    records: list[Record] = field(default_factory=list)
    accepted: int = 0
    rejected: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)
    refused: tuple[int, str] | None = None  # the whole body: (status, message)
    reason: str = "validation"
    letter_source: str | None = None  # the source named by its dead letter, when it has one
    skipped: int = 0  # values with no usable number (remote-write stale markers)

    def reject(self, position: int, message: str) -> None:
        self.rejected += 1
        if len(self.errors) < MAX_ITEM_ERRORS:
            self.errors.append((position, message))

    def refuse(self, message: str, reason: str) -> None:
        """The body as a whole is unusable: nothing of it is written but its dead letter."""
        self.records.clear()
        self.accepted = 0
        self.refused = (413 if reason in TOO_LARGE else 400, message)
        self.reason = reason

    def error_text(self) -> str:
        """For the dead letter and logs: what was wrong, the first errors by position."""
        if self.refused is not None:
            return self.refused[1]
        listed = "; ".join(f"item {p}: {m}" for p, m in self.errors)
        total = self.accepted + self.rejected
        return f"{self.rejected} of {total} items rejected: {listed}"

    def answer(self) -> tuple[int, dict[str, Any]]:
        """The batch routes' answer: 202, or 400 listing positions (the good items were
        stored), or 400/413 for the body as a whole (nothing was)."""
        if self.refused is not None:
            return self.refused[0], {"error": self.refused[1]}
        if self.rejected:
            errors = [{"position": p, "error": m} for p, m in self.errors]
            return 400, {"accepted": self.accepted, "rejected": self.rejected, "errors": errors}
        return 202, {"accepted": self.accepted}


class RecordMaker:
    """Encode items into records of one topic, stamping content-derived event ids."""

    def __init__(self, outcome: Outcome, topic: str, key: Callable[[Any], bytes],
                 bounds: TimeBounds | None = None, tenant: str | None = None) -> None:  # fmt: skip
        self.outcome = outcome
        self.tenant = tenant  # decided by the request's credential: overrides the item's
        self.topic = topic
        self.key = key
        self.bounds = bounds
        self.scope = f"{outcome.route}\x00".encode()
        self._seen: dict[bytes, int] = {}

    def add(self, position: int, item: BaseModel) -> None:
        name = type(item).__name__
        if self.bounds is not None:
            problem = self.bounds.check(name, item.time)  # type: ignore[attr-defined]
            if problem is not None:
                self.outcome.reject(position, problem)
                return
        named = getattr(item, "tenant", None)
        if self.tenant is not None and "tenant" in item.model_fields_set and named != self.tenant:
            self.outcome.reject(position, f"{name}.tenant: {named!r}, but the credential "
                                          f"belongs to tenant {self.tenant!r}")  # fmt: skip
            return
        # the model's fields straight to orjson (codec.encode_fields' bytes, without
        # model_dump's intermediate dict): the content without the envelope's id and
        # time, then all
        doc = dict(item.__dict__)
        given, produced = doc.pop("event_id"), doc.pop("produced_at")
        if self.tenant is not None:
            doc["tenant"] = self.tenant
        try:
            content = orjson.dumps(doc, default=_fields, option=_FIELDS)
        except orjson.JSONEncodeError:  # a type orjson does not write as pydantic does
            doc = item.model_dump(mode="json")
            given, produced = doc.pop("event_id"), doc.pop("produced_at")
            doc["tenant"] = self.tenant or doc["tenant"]
            content = orjson.dumps(doc, option=_FIELDS)
        doc["event_id"] = given if "event_id" in item.model_fields_set else self.event_id(content)
        doc["produced_at"] = produced
        # a copy of its exact size: orjson's own result keeps the 4 KiB buffer it was
        # written into, and a request holds all its records until Kafka acknowledged
        value = memoryview(orjson.dumps(doc, default=_fields, option=_FIELDS)).tobytes()
        key = self.key(item)
        if len(key) + len(value) > MAX_RECORD_BYTES:
            self.outcome.reject(position, _too_large(name, doc, len(key) + len(value)))
            return
        self.outcome.records.append((self.topic, key, value))
        self.outcome.accepted += 1

    def event_id(self, content: bytes) -> str:
        digest = hashlib.sha256(self.scope + content).digest()
        seen = self._seen.get(digest, 0)
        self._seen[digest] = seen + 1
        if seen:  # the same content again in this request: another event, its own id
            digest = hashlib.sha256(digest + seen.to_bytes(4, "big")).digest()
        return digest.hex()[:32]


def _too_large(model: str, doc: dict[str, Any], size: int) -> str:
    sizes = {k: len(orjson.dumps(v, default=_fields, option=_FIELDS)) for k, v in doc.items()}
    biggest = max(sizes, key=lambda k: sizes[k])
    return (f"{model}.{biggest}: the record would be {size} bytes, over Kafka's limit of "
            f"{MAX_RECORD_BYTES} ({biggest} takes {sizes[biggest]} as JSON)")  # fmt: skip

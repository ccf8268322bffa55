"""Incident histories made by the real incident core, and written to the real topics:
what the projector reads in tests and benchmarks, without running the agents.

Each incident opens on a critical alert, is paged, acknowledged after a while, gets a
note, and is resolved (all but every `open_every`-th), the ledger, snapshots and
notifications exactly as the agents would emit them."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

from confluent_kafka import Producer

from processors.incidents.ledger import Effect
from processors.incidents.lifecycle import on_alert, on_command
from processors.incidents.state import GroupState, Route
from schemas import Alert, Command, Incident, IncidentEvent, Notification
from schemas.codec import encode_fields
from schemas.config import Config, load_config
from streams.catalog import Catalog
from streams.kafka import make_producer
from streams.settings import KafkaSettings

EXAMPLE_CONFIG = Path(__file__).resolve().parent.parent / "examples" / "config"
SERVICES = [("search", "platform", "platform-default"), ("checkout", "payments",
            "payments-default"), ("db", "platform", "platform-default")]  # fmt: skip


def history(n: int, start: datetime, cfg: Config | None = None, seed: int = 7,
            open_every: int = 10, every: timedelta = timedelta(minutes=1),
            ) -> Iterator[Effect]:  # fmt: skip
    """The effects of `n` incidents, one opening every `every` from `start`."""
    cfg = cfg or load_config([EXAMPLE_CONFIG])
    rnd = random.Random(seed)
    for i in range(n):
        service, team, policy = SERVICES[i % len(SERVICES)]
        host = f"web-{i:06d}"
        st = GroupState(group_key=f"{service}|{host}",
                        route=Route(service=service, team=team, policy=policy))  # fmt: skip
        at = start + i * every
        rule = ("cpu_saturation_critical", "disk_full", "error_rate_high")[rnd.randrange(3)]
        alert = Alert(fingerprint=f"fp-{i}", status="firing", rule=rule, severity="critical",
                      labels={"host": host, "service": service, "alertname": rule},
                      summary=f"{rule} on {host}", value=95.0 + rnd.random(), threshold=90.0,
                      starts_at=at, event_id=f"a-{i}")  # fmt: skip
        yield from on_alert(st, alert, at, cfg).effects
        inc = st.incident_id
        assert inc is not None
        acked = at + timedelta(seconds=rnd.randrange(30, 900))
        yield from _cmd(st, cfg, "ack", inc, acked, actor="alice")
        yield from _cmd(st, cfg, "note", inc, acked + timedelta(seconds=5), actor="alice",
                        text="looking into it")  # fmt: skip
        if i % open_every != open_every - 1:
            done = acked + timedelta(seconds=rnd.randrange(60, 3600))
            yield from _cmd(st, cfg, "resolve", inc, done, actor="alice")


def _cmd(st: GroupState, cfg: Config, action: str, inc: str, at: datetime,
         **kw: object) -> list[Effect]:  # fmt: skip
    fields: dict[str, object] = {"action": action, "incident_id": inc, "at": at,
                                 "event_id": f"{inc}/{action}", **kw}  # fmt: skip
    cmd = Command.model_validate(fields)
    return on_command(st, cmd, at, cfg).effects


def topic_of(effect: Effect) -> str:
    if isinstance(effect, IncidentEvent):
        return "incident-events"
    if isinstance(effect, Notification):
        return "notifications"
    assert isinstance(effect, Incident)
    return "incidents"


def produce(settings: KafkaSettings, effects: Iterator[Effect] | list[Effect],
            producer: Producer | None = None) -> int:  # fmt: skip
    """Write effects where the agents write them (keyed by incident id); acknowledged."""
    catalog = Catalog(settings)
    names = {k: catalog.name(k) for k in ("incidents", "incident-events", "notifications")}
    p = producer or make_producer(settings, **{"linger.ms": 20})
    n = 0
    for e in effects:
        value = encode_fields(e)
        while True:
            try:
                p.produce(names[topic_of(e)], value, key=e.incident_id.encode())
                break
            except BufferError:
                p.poll(0.1)
        n += 1
        if n % 10_000 == 0:
            p.poll(0)
    left = p.flush(60)
    if left:
        raise RuntimeError(f"{left} records not acknowledged")
    return n

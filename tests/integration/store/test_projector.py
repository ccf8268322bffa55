"""The projector against the real broker and real databases (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select

from harness.incidents import history, produce, topic_of
from schemas import Command, encode
from schemas.commands import Matcher, SilenceSpec
from streams.catalog import Catalog
from streams.kafka import make_producer
from streams.settings import KafkaSettings
from streams.store import tables
from streams.store.projector import Projector
from tests.integration.store.support import count, dump, wait_until

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def projector(kafka_settings: KafkaSettings, topics: Catalog,
              engine: Engine) -> Iterator[Projector]:  # fmt: skip
    p = Projector(kafka_settings, engine)
    stop = threading.Event()
    t = threading.Thread(target=p.run, args=(stop,), daemon=True)
    t.start()
    yield p
    stop.set()
    t.join(30)


def test_the_store_holds_incidents_timelines_members_and_notifications(
    kafka_settings: KafkaSettings, projector: Projector, engine: Engine
) -> None:
    effects = list(history(12, T0))
    kinds = Counter(topic_of(e) for e in effects)
    produce(kafka_settings, effects)
    wait_until("every ledger entry", lambda: count(engine, tables.timeline)
               == kinds["incident-events"])  # fmt: skip
    wait_until("every incident", lambda: count(engine, tables.incidents) == 12)
    wait_until("every notification", lambda: count(engine, tables.notifications)
               == kinds["notifications"])  # fmt: skip
    with engine.connect() as conn:
        rows = conn.execute(select(tables.incidents).order_by(tables.incidents.c.opened_at)).all()
        first = rows[0]
        assert first.status == "resolved" and first.opened_at == T0
        assert first.acknowledged_at is not None and first.acknowledged_at > T0
        assert rows[9].status == "acknowledged", "every tenth incident stays open"
        member = conn.execute(select(tables.members).where(
            tables.members.c.incident_id == first.incident_id)).one()  # fmt: skip
        assert member.value is not None and member.value > member.threshold == 90.0
        kinds_seen = [r.kind for r in conn.execute(
            select(tables.timeline.c.kind).where(tables.timeline.c.incident_id == first.incident_id)
            .order_by(tables.timeline.c.seq))]  # fmt: skip
        assert kinds_seen == ["opened", "notified", "acknowledged", "note", "resolved"]


def test_silences_created_and_expired_by_command_are_listed(
    kafka_settings: KafkaSettings, projector: Projector, engine: Engine
) -> None:
    spec = SilenceSpec(matchers=[Matcher(label="host", op="=~", value="web-.*")],
                       starts_at=T0, ends_at=T0 + timedelta(hours=2), author="alice",
                       comment="deploy")  # fmt: skip
    create = Command(action="silence", actor="alice", at=T0, silence=spec)
    expire = Command(action="expire_silence", actor="bob", at=T0 + timedelta(minutes=5),
                     silence_id=create.event_id)  # fmt: skip
    p = make_producer(kafka_settings)
    topic = Catalog(kafka_settings).name("commands")
    for cmd in (create, expire):
        p.produce(topic, encode(cmd), key=create.event_id.encode())
    assert p.flush(30) == 0
    wait_until("the expiry", lambda: _expired_by(engine, create.event_id) == "bob")
    with engine.connect() as conn:
        row = conn.execute(select(tables.silences)).one()
    assert row.matchers == [{"label": "host", "op": "=~", "value": "web-.*"}]
    assert row.expired_at == T0 + timedelta(minutes=5) and row.comment == "deploy"


def _expired_by(engine: Engine, sid: str) -> str | None:
    with engine.connect() as conn:
        return conn.execute(select(tables.silences.c.expired_by)
                            .where(tables.silences.c.silence_id == sid)).scalar()  # fmt: skip


def test_a_record_that_does_not_decode_is_dead_lettered_and_the_rest_applied(
    kafka_settings: KafkaSettings, projector: Projector, engine: Engine
) -> None:
    p = make_producer(kafka_settings)
    catalog = Catalog(kafka_settings)
    p.produce(catalog.name("incident-events"), b'{"incident_id": 7}', key=b"x")
    assert p.flush(30) == 0
    produce(kafka_settings, list(history(2, T0)))
    wait_until("both incidents", lambda: count(engine, tables.incidents) == 2)
    from streams.kafka import read_topic

    letters = read_topic(kafka_settings, catalog.name("deadletter"), timeout=20)
    assert len(letters) == 1 and b"IncidentEvent" in letters[0]
    assert projector.metrics.dead_letters.labels(
        topic=catalog.name("incident-events"), reason="validation")._value.get() == 1  # fmt: skip


def test_a_replayed_batch_changes_nothing(
    kafka_settings: KafkaSettings, topics: Catalog, engine: Engine
) -> None:
    from streams.store.projection import Rec, apply_batch

    effects = list(history(3, T0))
    recs = [Rec(topic_of(e), topics.name(topic_of(e)), 0, i, encode(e))  # type: ignore[arg-type]
            for i, e in enumerate(effects)]  # fmt: skip
    with engine.begin() as conn:
        first = apply_batch(conn, recs)
    before = dump(engine)
    with engine.begin() as conn:
        again = apply_batch(conn, recs[5:] + recs[:5])
    assert first.skipped == 0 and again.skipped == len(recs) and not again.applied
    assert dump(engine) == before

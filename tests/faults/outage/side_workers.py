"""The expiry worker and the projector across a broker outage (test_broker_outage.py
runs it). They run loops of their own (not the shared runtime's): after Kafka comes
back, the expiry worker still resolves the alerts whose end passed while it was away,
exactly once, and the projector goes on filling the store the console and the API
read."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from harness.incidents import history, produce, topic_of
from schemas import Alert, decode, encode
from streams.admin import create_topics
from streams.catalog import Catalog
from streams.expiry.worker import ExpiryWorker
from streams.kafka import make_admin, make_producer
from streams.settings import KafkaSettings
from streams.store import tables
from streams.store.db import StoreSettings, migrate, open_engine
from streams.store.projector import Projector
from tests.faults.outage.scenario import own_broker
from tests.integration.connectors.support import read_keyed
from tests.integration.store.support import count

OUTAGE_S = 20.0
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _alert(fp: str, ends: datetime) -> Alert:
    return Alert(fingerprint=fp, status="firing", rule=fp, source="alertmanager",
                 labels={"alertname": fp}, starts_at=datetime.now(UTC) - timedelta(minutes=1),
                 ends_at=ends)  # fmt: skip


def _send(settings: KafkaSettings, *alerts: Alert) -> None:
    producer = make_producer(settings)
    for a in alerts:
        producer.produce(Catalog(settings).name("alerts"), key=a.fingerprint.encode(),
                         value=encode(a))  # fmt: skip
    assert producer.flush(30) == 0


def _expired(settings: KafkaSettings) -> list[str]:
    alerts = [decode(Alert, v) for _, v in read_keyed(settings, Catalog(settings).name("alerts"))]
    return sorted(a.fingerprint for a in alerts if "resolved_by" in a.annotations)


def _wait_for(what: str | Callable[[], str], found: Callable[[], object],
              timeout: float = 120.0) -> None:  # fmt: skip
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found():
            return
        time.sleep(0.5)  # polling interval of a bounded wait
    raise AssertionError(f"timed out waiting for {what if isinstance(what, str) else what()}")


@contextmanager
def _running(*loops: Callable[[threading.Event], None]) -> Iterator[list[threading.Thread]]:
    stop = threading.Event()
    threads = [threading.Thread(target=loop, args=(stop,), daemon=True) for loop in loops]
    for t in threads:
        t.start()
    try:
        yield threads
    finally:
        stop.set()
        for t in threads:
            t.join(60)


def run_side_outage(tmp_path: Path) -> None:
    broker = own_broker()
    try:
        broker.start()
        settings = KafkaSettings(bootstrap_servers=broker.bootstrap, partitions=2,
                                 topic_prefix=f"so{uuid.uuid4().hex[:8]}.")  # fmt: skip
        create_topics(make_admin(settings), Catalog(settings))
        engine = open_engine(StoreSettings(path=str(tmp_path / "store.sqlite3")))
        migrate(engine)
        expiry = ExpiryWorker(settings)
        projector = Projector(settings, engine)
        effects = list(history(4, T0))
        first_half = effects[: len(effects) // 2]
        # the store starts empty: what the first half opens is what it must show
        opened = len({e.incident_id for e in first_half if topic_of(e) == "incidents"})
        with _running(expiry.run, projector.run) as threads:
            produce(settings, first_half)
            _send(settings, _alert("before", datetime.now(UTC) + timedelta(seconds=2)))
            _wait_for("the first alert to expire", lambda: _expired(settings) == ["before"])
            _wait_for("the first incidents in the store",
                      lambda: count(engine, tables.incidents) == opened)  # fmt: skip
            # due while Kafka is away: decided once it is back
            _send(settings, _alert("during", datetime.now(UTC) + timedelta(seconds=5)))
            broker.stop()
            away = time.monotonic()
            while time.monotonic() - away < OUTAGE_S:
                assert all(t.is_alive() for t in threads), "a worker died during the outage"
                time.sleep(0.5)  # the outage's length is the scenario; the loop checks on it
            broker.start()
            produce(settings, effects[len(effects) // 2 :])
            _send(settings, _alert("after", datetime.now(UTC) + timedelta(seconds=2)))
            _wait_for(lambda: f"the alerts due during and after the outage to expire: "
                      f"{_expired(settings)}, leases {expiry.metrics.leases._value.get()}",
                      lambda: _expired(settings) == ["after", "before", "during"])  # fmt: skip
            _wait_for("every incident in the store",
                      lambda: count(engine, tables.incidents) == 4)  # fmt: skip
            assert all(t.is_alive() for t in threads)
        # nothing decided twice: a second look after the workers settled
        assert _expired(settings) == ["after", "before", "during"]
        engine.dispose()
    finally:
        broker.stop()

"""kill -9 mid-batch leaves the store equal to a fresh rebuild; a database away is waited
out (not ready meanwhile), never skipped."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine

from harness.incidents import history, produce, topic_of
from harness.postgres import LocalPostgres, binaries
from harness.workers import kill9
from schemas import IncidentEvent
from streams.catalog import Catalog
from streams.settings import KafkaSettings
from streams.store import tables
from streams.store.db import StoreSettings, migrate, open_engine
from streams.store.projector import Projector
from tests.integration.store.conftest import PG_PORT, new_store, store_env
from tests.integration.store.support import count, dump, wait_until

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _start(settings: KafkaSettings, store: StoreSettings, log: Path,
           *args: str) -> subprocess.Popen[bytes]:  # fmt: skip
    env = {**os.environ, **settings.environment(), **store_env(store),
           "TOCSIN_LOG_FORMAT": "json"}  # fmt: skip
    cmd = [sys.executable, "-m", "streams.cli.main", *args]
    return subprocess.Popen(cmd, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT,
                            start_new_session=True)  # fmt: skip


@pytest.mark.faults
def test_kill9_mid_batch_leaves_the_store_equal_to_a_rebuild(
    kafka_settings: KafkaSettings, topics: Catalog, store: StoreSettings, engine: Engine,
    tmp_path: Path, request: pytest.FixtureRequest,
) -> None:  # fmt: skip
    effects = list(history(1200, T0))
    kinds = Counter(topic_of(e) for e in effects)
    events, pages = kinds["incident-events"], kinds["notifications"]
    produce(kafka_settings, effects)
    log = tmp_path / "projector.log"
    # small batches and a close watch, so the kill lands while most of the work is ahead
    run = ("run", "projector", "--health-port", "0", "--batch", "50")
    proc = _start(kafka_settings, store, log, *run)
    try:
        wait_until("the first rows", lambda: count(engine, tables.timeline) > 0, 120, 0.01)
        kill9(proc)
        partial = count(engine, tables.timeline)
        assert partial < events, "killed before it was done"
        proc = _start(kafka_settings, store, log, *run)
        wait_until("every ledger entry", lambda: count(engine, tables.timeline) == events, 180)
        wait_until("every incident", lambda: count(engine, tables.incidents) == 1200, 60)
        # the topics are read side by side: each one has to be all there
        wait_until("every page", lambda: count(engine, tables.notifications) == pages, 60)
        wait_until("the last snapshots", lambda: _at_end(engine, kafka_settings), 60)
    finally:
        kill9(proc)
    projected = dump(engine)
    # a second store of the same kind, rebuilt from the topics by the CLI
    fresh = new_store("sqlite" if store.dsn is None else "postgresql", request, tmp_path)
    rebuilt = _start(kafka_settings, fresh, tmp_path / "rebuild.log", "projector", "rebuild",
                     "--yes")  # fmt: skip
    assert rebuilt.wait(300) == 0, (tmp_path / "rebuild.log").read_text()[-2000:]
    other = open_engine(fresh)
    try:
        assert dump(other) == projected
    finally:
        other.dispose()


def _at_end(engine: Engine, settings: KafkaSettings) -> bool:
    """The store's offsets reached the end of every partition of `incidents`."""
    from confluent_kafka import TopicPartition

    from streams.kafka import make_consumer
    from streams.store.projection import stored_offsets

    topic = Catalog(settings).name("incidents")
    with engine.connect() as conn:
        stored = stored_offsets(conn, topics=[topic])
    c = make_consumer(settings, "probe")
    try:
        for p in range(settings.partitions):
            _, high = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            if high > 0 and stored.get((topic, p), 0) < high:
                return False
        return True
    finally:
        c.close()


@pytest.mark.faults
def test_a_database_outage_is_waited_out_not_skipped(
    kafka_settings: KafkaSettings, topics: Catalog, tmp_path: Path
) -> None:
    if binaries() is None:
        pytest.skip("PostgreSQL is not installed: `make peers` installs `postgresql`")
    pg = LocalPostgres(PG_PORT + 1).start()  # a server of its own: this test stops it
    engine = open_engine(StoreSettings(dsn=pg.dsn, timeout_s=2))  # type: ignore[arg-type]
    projector = Projector(kafka_settings, engine)
    stop = threading.Event()
    worker = threading.Thread(target=projector.run, args=(stop,), daemon=True)
    try:
        migrate(engine)
        worker.start()
        produce(kafka_settings, list(history(5, T0)))
        wait_until("the first incidents", lambda: count(engine, tables.incidents) == 5)
        assert projector.health.ready()[0]
        pg.stop_server()
        later = list(history(30, T0, seed=9))[60:]  # more of the ledger, while it is away
        produce(kafka_settings, later)
        wait_until("not ready", lambda: not projector.health.ready()[0], 60)
        checks = projector.health.ready()[1]["checks"]
        assert "waiting" in checks["store"]["detail"]  # type: ignore[index]
        pg.resume()
        wait_until("ready again", lambda: projector.health.ready()[0], 90)
        events = len({(e.incident_id, e.seq) for e in [*history(5, T0), *later]
                      if isinstance(e, IncidentEvent)})  # fmt: skip
        wait_until("every ledger entry", lambda: count(engine, tables.timeline) == events, 60)
    finally:
        stop.set()
        worker.join(30)
        engine.dispose()
        pg.stop()

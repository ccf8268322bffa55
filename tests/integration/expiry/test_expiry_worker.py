"""The expiry worker on the real broker: a firing alert that is not sent again before
its end resolves once; a re-sent or resolved one does not; a restart re-reads the
leases it needs and decides nothing twice."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from schemas import Alert, decode, encode
from streams.catalog import Catalog
from streams.expiry.worker import ExpiryWorker
from streams.kafka import make_producer
from streams.settings import KafkaSettings
from tests.integration.connectors.support import read_keyed


def _alert(fp: str, status: str, ends: datetime) -> Alert:
    now = datetime.now(UTC)
    return Alert(fingerprint=fp, status=status, rule=fp, source="alertmanager",  # type: ignore[arg-type]
                 labels={"alertname": fp}, starts_at=now - timedelta(minutes=1),
                 ends_at=ends)  # fmt: skip


def _send(settings: KafkaSettings, topics: Catalog, *alerts: Alert) -> None:
    producer = make_producer(settings)
    for a in alerts:
        producer.produce(topics.name("alerts"), key=a.fingerprint.encode(), value=encode(a))
    assert producer.flush(10) == 0


@contextmanager
def _worker(settings: KafkaSettings) -> Iterator[ExpiryWorker]:
    worker, stop = ExpiryWorker(settings), threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield worker
    finally:
        stop.set()
        thread.join(30)


def _expired(settings: KafkaSettings, topics: Catalog) -> list[Alert]:
    alerts = [decode(Alert, v) for _, v in read_keyed(settings, topics.name("alerts"))]
    return [a for a in alerts if "resolved_by" in a.annotations]


def _wait_for(what: str, found: object, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found():  # type: ignore[operator]
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def test_alerts_that_stop_coming_resolve_once_across_a_restart(
    kafka_settings: KafkaSettings, topics: Catalog
) -> None:
    soon = datetime.now(UTC) + timedelta(seconds=3)
    now = datetime.now(UTC)
    later = soon + timedelta(hours=1)
    _send(kafka_settings, topics,
          _alert("stopped", "firing", soon),
          _alert("resent", "firing", soon), _alert("resent", "firing", later),
          _alert("ended", "firing", soon), _alert("ended", "resolved", now))  # fmt: skip
    with _worker(kafka_settings):
        _wait_for("the stopped alert to resolve",
                  lambda: _expired(kafka_settings, topics))  # fmt: skip
        # decided in the same turn as 'stopped': had the others expired, they would be here
        assert [a.fingerprint for a in _expired(kafka_settings, topics)] == ["stopped"]
    (done,) = _expired(kafka_settings, topics)
    assert done.status == "resolved" and done.ends_at == soon
    assert done.labels == {"alertname": "stopped"}
    # sent while no worker ran: the next one re-reads `alerts` and resolves it, and
    # 'stopped', whose resolution it reads back, is not resolved again
    _send(kafka_settings, topics, _alert("meanwhile", "firing",
                                         datetime.now(UTC) + timedelta(seconds=2)))  # fmt: skip
    with _worker(kafka_settings):
        _wait_for("the alert sent meanwhile to resolve",
                  lambda: len(_expired(kafka_settings, topics)) >= 2)  # fmt: skip
    names = [a.fingerprint for a in _expired(kafka_settings, topics)]
    assert sorted(names) == ["meanwhile", "stopped"], names

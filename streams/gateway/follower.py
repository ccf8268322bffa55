"""Follow a whole topic from its start on a thread: the gateway's in-memory views
(silences, firing alerts, the incident index) are built this way, each from the records
it cares about. A consumer that stops hearing the broker is replaced where it had read
to (renewal.py: `Hearing`), or the view would stay as it was before a broker restart."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

import structlog
from confluent_kafka import KafkaError, TopicPartition

from streams.kafka import KafkaWait, make_consumer
from streams.runtime.renewal import Hearing
from streams.settings import KafkaSettings

log = structlog.get_logger(__name__)
OnRecord = Callable[[bytes | None, bytes | None], None]


class TopicFollower:
    """Every partition of ``topic`` from offset 0, no consumer group commits; each record
    to ``on_record(key, value)`` (which must not raise); ``caught_up`` once every partition
    reached its end once."""

    def __init__(self, settings: KafkaSettings, topic: str, on_record: OnRecord,
                 name: str) -> None:  # fmt: skip
        self._settings = settings
        self._topic = topic
        self._on_record = on_record
        self._name = name
        self._next: dict[int, int] = {}  # the next offset to read, by partition
        self.caught_up = False
        # not the gateway's readiness: intake goes on while a view lags
        self.hearing = Hearing(KafkaWait(f"gateway/{name}"))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> TopicFollower:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.hearing.wait.closed()

    def _run(self) -> None:
        consumer = self._consumer()
        try:
            parts = self._partitions(consumer)
            if not parts:
                return
            self._assign(consumer, parts)
            eof: set[int] = set()
            while not self._stop.is_set():
                for msg in consumer.consume(500, timeout=0.5):
                    err = msg.error()
                    if err is None:
                        self._next[msg.partition() or 0] = (msg.offset() or 0) + 1
                        self._on_record(msg.key(), msg.value())
                    elif err.code() == KafkaError._PARTITION_EOF:
                        eof.add(msg.partition() or 0)
                        self.caught_up = self.caught_up or len(eof) == len(parts)
                    else:
                        self.hearing.fetch_failed(err)
                if self.hearing.due() and (reason := self.hearing.probe(consumer, self._topic)):
                    log.warning("consumer_replaced", view=self._name, reason=reason)
                    consumer.close()
                    consumer = self._consumer()
                    self._assign(consumer, parts)
        finally:
            consumer.close()

    def _consumer(self) -> Any:
        group = f"{self._settings.topic_prefix}gateway-{self._name}-{uuid.uuid4().hex[:8]}"
        self.hearing.renewed()
        return make_consumer(self._settings, group, **{"enable.partition.eof": True})

    def _assign(self, consumer: Any, parts: list[int]) -> None:
        consumer.assign([TopicPartition(self._topic, p, self._next.get(p, 0)) for p in parts])

    def _partitions(self, consumer: Any) -> list[int]:
        while not self._stop.is_set():
            try:
                meta = consumer.list_topics(self._topic, timeout=1)
                parts = list(meta.topics[self._topic].partitions)
                if parts:
                    return parts
            except Exception as exc:  # broker not up yet: keep trying, stay not caught up
                log.info("view_waiting", view=self._name, error=str(exc)[:200])
            self._stop.wait(1)
        return []

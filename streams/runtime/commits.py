"""The two steps of an at-least-once commit, each waiting out a broker that is away:
every record produced is acknowledged, then the consumed offsets are committed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import structlog
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer

from streams.kafka import CALL_TIMEOUT_S, KafkaWait, retriable

log = structlog.get_logger(__name__)

# a commit refused for these is tried again: the group coordinator is away, not gone
BROKER_AWAY = frozenset({KafkaError._WAIT_COORD, KafkaError._TRANSPORT, KafkaError._TIMED_OUT})


class _Stop(Protocol):
    def is_set(self) -> bool: ...
    def wait(self, timeout: float | None = None) -> bool: ...


def flush_acknowledged(producer: Producer, wait: KafkaWait, beat: Callable[[], None],
                       stop: _Stop, what: str) -> None:  # fmt: skip
    """Return once every record the producer holds was acknowledged, however long the
    broker is away; raise instead when the worker is stopping (nothing then commits)."""
    while (left := producer.flush(CALL_TIMEOUT_S)) != 0:
        if stop.is_set():
            raise RuntimeError(f"stopped before {what} were acknowledged: not committing")
        wait.waiting(f"acknowledgement of {left} {what}")
        beat()


def commit_consumed(
    consumer: Consumer, wait: KafkaWait, beat: Callable[[], None], stop: _Stop
) -> None:
    """Commit the consumer's offsets synchronously, waiting out an away coordinator.
    A commit refused for good (the partitions moved meanwhile) is skipped: their next
    owner re-reads the batch, whose outputs carry the same ids."""
    while True:
        try:
            consumer.commit(asynchronous=False)
        except KafkaException as exc:
            err = exc.args[0] if exc.args else None
            if isinstance(err, KafkaError) and err.code() == KafkaError._NO_OFFSET:
                # nothing new to commit: answered locally, no sign the broker is there
                return
            waits = isinstance(err, KafkaError) and err.code() in BROKER_AWAY
            if not (waits or retriable(exc)) or stop.is_set():
                log.info("commit_skipped", error=str(exc)[:300])
                return
            wait.waiting("the offset commit", err)
            beat()
            stop.wait(1.0)
            continue
        break
    wait.progressed()

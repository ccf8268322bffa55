"""The two steps of an at-least-once commit, each waiting out a broker that is away:
every record produced is acknowledged, then the consumed offsets are committed."""

from __future__ import annotations

import threading
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


def commit_consumed(consumer: Consumer, wait: KafkaWait, beat: Callable[[], None],
                    stop: _Stop, watch_s: float = CALL_TIMEOUT_S) -> None:  # fmt: skip
    """Commit the consumer's offsets synchronously, waiting out an away coordinator.
    A commit refused for good (the partitions moved meanwhile) is skipped: their next
    owner re-reads the batch, whose outputs carry the same ids."""
    while True:
        try:
            _commit_watched(consumer, wait, beat, watch_s)
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


def _commit_watched(consumer: Consumer, wait: KafkaWait, beat: Callable[[], None],
                    every_s: float = CALL_TIMEOUT_S) -> None:  # fmt: skip
    """A synchronous commit has no timeout: begun just as the broker goes away, it
    returns only once the broker is back. It runs on a thread of its own meanwhile, and
    every `every_s` it has not returned the worker says it waits (readiness false, a
    log line) and beats its liveness, as in every other wait for the broker. Nothing
    else touches the consumer until it returns."""
    failed: list[BaseException] = []

    def commit() -> None:
        try:
            consumer.commit(asynchronous=False)
        except BaseException as exc:  # handed to the caller's thread
            failed.append(exc)

    thread = threading.Thread(target=commit, name="offset-commit", daemon=True)
    thread.start()
    thread.join(every_s)
    while thread.is_alive():
        wait.waiting("the offset commit")
        beat()
        thread.join(every_s)
    if failed:
        raise failed[0]

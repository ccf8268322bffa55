"""What a worker says while Kafka is away: readiness, and a log line that is not a flood."""

from __future__ import annotations

import logging
import threading

from structlog.testing import capture_logs

from streams.kafka import KafkaWait
from streams.logs import RepeatFilter
from streams.runtime.commits import commit_consumed


def test_a_wait_makes_the_worker_not_ready_until_progress_and_logs_sparingly() -> None:
    now = [0.0]
    wait = KafkaWait("processor/w1", log_every_s=30, clock=lambda: now[0])
    assert wait.check() == (True, "making progress")
    with capture_logs() as logs:
        for _ in range(120):  # a retry every half second for a minute
            wait.waiting("the transaction's commit", "KafkaError{code=_TIMED_OUT}")
            now[0] += 0.5
        ok, detail = wait.check()
        wait.progressed()
        wait.progressed()  # progress without a wait says nothing
    assert not ok and detail == "waiting 60s for the transaction's commit"
    assert wait.check()[0]
    waiting = [e for e in logs if e["event"] == "kafka_waiting"]
    assert [e["for_s"] for e in waiting] == [0.0, 30.0], "one line, then one per 30 s"
    assert waiting[0]["waiting_for"] == "the transaction's commit"
    recovered = [e for e in logs if e["event"] == "kafka_recovered"]
    assert [(e["waited_for"], e["waited_s"]) for e in recovered] == [
        ("the transaction's commit", 60.0)
    ]
    assert wait.waits == 1


def test_repeated_client_errors_are_let_through_once_per_period_with_a_count() -> None:
    now = [0.0]
    quiet = RepeatFilter(every_s=30, clock=lambda: now[0])

    def record(msg: str, *args: object) -> logging.LogRecord:
        return logging.LogRecord("aiokafka.conn", logging.ERROR, "", 0, msg, args, None)

    passed = []
    for _ in range(40):  # ten a second, for four seconds ...
        r = record("Unable connect to node with id %s: %s", 1, "refused")
        if quiet.filter(r):
            passed.append(r.getMessage())
        now[0] += 0.1
    now[0] = 31.0  # ... and once more after the period
    late = record("Unable connect to node with id %s: %s", 1, "refused")
    assert quiet.filter(late)
    other = record("Failed fetch messages from %s: %s", 1, "NodeNotReadyError")
    assert quiet.filter(other), "another kind of line is not held back"
    assert passed == ["Unable connect to node with id 1: refused"]
    assert late.getMessage().endswith("(39 more like this in the last 31s)")
    info = logging.LogRecord("aiokafka.conn", logging.INFO, "", 0, "joined", (), None)
    assert quiet.filter(info) and quiet.filter(info), "below warning: never filtered"


def test_a_commit_that_hangs_while_the_broker_is_away_makes_the_worker_not_ready() -> None:
    """A synchronous commit begun as the broker goes away returns only once it is back:
    meanwhile the worker says it waits and stays live, and is ready again after."""
    release = threading.Event()
    seen: list[tuple[bool, str]] = []
    beats = []

    class HangingConsumer:
        def commit(self, asynchronous: bool) -> None:
            assert not asynchronous
            assert release.wait(30), "never released"

    wait = KafkaWait("notifier")

    def beat() -> None:
        beats.append(1)
        if len(beats) == 3:  # three watch periods into the hang: the broker is back
            seen.append(wait.check())
            release.set()

    with capture_logs() as logs:
        commit_consumed(HangingConsumer(), wait, beat, threading.Event(),  # type: ignore[arg-type]
                        watch_s=0.01)  # fmt: skip
    assert len(beats) == 3, "live while it waits"
    assert not seen[0][0] and "the offset commit" in seen[0][1]
    assert wait.check()[0] and wait.waits == 1, "ready again once the commit returned"
    assert [e["event"] for e in logs] == ["kafka_waiting", "kafka_recovered"]

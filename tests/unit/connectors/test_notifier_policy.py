"""The notifier's delivery policy with a scripted sink: every attempt is a receipt,
Retry-After is honoured, a final failure is not retried, and a notification still
failing after its attempts goes back on the outbox instead of disappearing."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from connectors.sinks.delivery import Delivery, RetryPolicy
from schemas import DeliveryReceipt, Notification, decode
from streams.notifier.worker import Notifier
from streams.settings import KafkaSettings

T0 = datetime(2026, 1, 1, tzinfo=UTC)


class Recorder:
    def __init__(self) -> None:
        self.records: list[tuple[str, bytes | None, bytes | None]] = []

    def produce(self, topic: str, value: Any = None, key: Any = None, **_: Any) -> None:
        self.records.append((topic, key, value))

    def on(self, suffix: str) -> list[bytes]:
        return [v for t, _, v in self.records if t.endswith(suffix) and v is not None]


class Scripted:
    def __init__(self, *outcomes: Delivery) -> None:
        self.outcomes = list(outcomes)
        self.seen: list[str] = []

    async def deliver(self, n: Notification) -> Delivery:
        self.seen.append(n.notification_id)
        return self.outcomes.pop(0)


def note(nid: str = "inc-1/trigger") -> Notification:
    return Notification(
        notification_id=nid,
        incident_id="inc-1",
        kind="trigger",
        channel="pagerduty",
        target="platform",
        title="Disk full",
        status="triggered",
        severity="error",
        priority="P2",
        opened_at=T0,
        at=T0,
    )


@pytest.fixture
def make() -> Any:
    def build(sink: Scripted, attempts: int = 3) -> tuple[Notifier, Recorder, list[float]]:
        sleeps: list[float] = []

        async def sleep(s: float) -> None:
            sleeps.append(s)

        worker = Notifier(
            KafkaSettings(bootstrap_servers="127.0.0.1:1", topic_prefix="u."),
            {"pagerduty": sink},
            retry=RetryPolicy(attempts=attempts, base_s=1),
            sleep=sleep,
        )
        rec = Recorder()
        worker.producer = rec  # type: ignore[assignment]
        worker.state._producer = rec  # type: ignore[assignment]
        return worker, rec, sleeps

    return build


async def test_retry_after_is_honoured_and_every_attempt_is_a_receipt(make: Any) -> None:
    sink = Scripted(
        Delivery(ok=False, retryable=True, retry_after=7, status_code=429),
        Delivery(ok=True, status_code=202, external_ref="inc-1"),
    )
    worker, rec, sleeps = make(sink)
    await worker._deliver(note(), "0:5")
    receipts = [decode(DeliveryReceipt, v) for v in rec.on("receipts")]
    assert [(r.attempt, r.outcome, r.status_code) for r in receipts] == [
        (1, "retrying", 429),
        (2, "delivered", 202),
    ]
    assert sleeps == [7]
    assert "inc-1/trigger" in worker.state.done


async def test_a_final_failure_is_recorded_and_not_retried(make: Any) -> None:
    worker, rec, sleeps = make(Scripted(Delivery(ok=False, status_code=400, error="bad key")))
    await worker._deliver(note(), "0:6")
    [receipt] = [decode(DeliveryReceipt, v) for v in rec.on("receipts")]
    assert receipt.outcome == "failed" and receipt.error == "bad key"
    assert not sleeps and not rec.on("notifications")


async def test_still_failing_after_all_attempts_goes_back_on_the_outbox(make: Any) -> None:
    down = Delivery(ok=False, retryable=True, status_code=503)
    worker, rec, sleeps = make(Scripted(down, down, down), attempts=3)
    await worker._deliver(note(), "0:7")
    assert [decode(DeliveryReceipt, v).outcome for v in rec.on("receipts")] == ["retrying"] * 3
    [again] = rec.on("notifications")
    assert decode(Notification, again).notification_id == "inc-1/trigger", "never dropped"
    assert "inc-1/trigger" not in worker.state.done
    assert all(0 <= s <= 2**a for a, s in enumerate(sleeps, 1)), "jittered backoff"


async def test_receipt_ids_repeat_on_replay_but_differ_per_round(make: Any) -> None:
    ok = Delivery(ok=True, status_code=202)
    worker, rec, _ = make(Scripted(ok, ok, ok))
    await worker._deliver(note("a"), "0:1")
    await worker._deliver(note("a"), "0:1")  # the same record re-read after a crash
    await worker._deliver(note("a"), "0:9")  # a re-enqueued round of it
    ids = [decode(DeliveryReceipt, v).event_id for v in rec.on("receipts")]
    assert ids[0] == ids[1] != ids[2]


async def test_the_breaker_stops_calling_a_destination_that_keeps_failing(make: Any) -> None:
    down = Delivery(ok=False, retryable=True, status_code=503)
    worker, _, sleeps = make(Scripted(*[down] * 12), attempts=3)
    for i in range(4):
        await worker._deliver(note(f"n{i}"), f"0:{i}")
    # after 5 consecutive failures the breaker is open: the next attempt waits it out
    assert any(s >= 25 for s in sleeps), sleeps


async def test_an_update_never_overtakes_the_trigger_it_follows(make: Any) -> None:
    down = Delivery(ok=False, retryable=True, status_code=503)
    sink = Scripted(down, down)
    worker, rec, _ = make(sink, attempts=2)
    update = note("inc-1/update")
    await worker._lane([(note(), "0:1"), (update, "0:2")])
    assert sink.seen == ["inc-1/trigger", "inc-1/trigger"], "the update was not attempted"
    requeued = [decode(Notification, v).notification_id for v in rec.on("notifications")]
    assert requeued == ["inc-1/trigger", "inc-1/update"], "both back on the outbox, in order"


async def test_a_parked_lane_holds_later_batches_until_its_notification_returns(
    make: Any,
) -> None:
    down = Delivery(ok=False, retryable=True, status_code=503)
    ok = Delivery(ok=True, status_code=202)
    sink = Scripted(down, ok, ok)
    worker, rec, _ = make(sink, attempts=1)
    trigger, update = note(), note("inc-1/update")
    await worker._lane([(trigger, "0:1")])  # fails: parked behind it
    await worker._lane([(update, "0:2")])  # a later batch: waits behind the trigger
    assert sink.seen == ["inc-1/trigger"]
    requeued = [decode(Notification, v).notification_id for v in rec.on("notifications")]
    assert requeued == ["inc-1/trigger", "inc-1/update"]
    await worker._lane([(trigger, "0:3"), (update, "0:4")])  # they come round in order
    assert sink.seen == ["inc-1/trigger", "inc-1/trigger", "inc-1/update"]
    assert not worker.parked

"""The transactional producer gives up on a commit or an abort that keeps timing out.

After a broker restart librdkafka was seen to keep the transaction coordinator's request
queued for good: every abort timed out, minutes after the broker was back, and the
processor waited on it for ever. A producer that librdkafka holds like that here always
times out, as the stuck one did."""

from __future__ import annotations

from threading import Event
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from streams.kafka import KafkaWait
from streams.runtime import transactions
from streams.runtime.transactions import Transactions
from streams.settings import KafkaSettings


class StuckProducer:
    """Answers every transactional call but init and begin with a retriable timeout."""

    made: list[StuckProducer] = []

    def __init__(self, stuck: bool) -> None:
        self.stuck = stuck
        self.purged = False
        StuckProducer.made.append(self)

    def _timed_out(self) -> None:
        if self.stuck:
            raise KafkaException(KafkaError(KafkaError._TIMED_OUT, "1 out-queue",
                                            retriable=True))  # fmt: skip

    def init_transactions(self, _: float) -> None:
        pass

    def begin_transaction(self) -> None:
        pass

    def abort_transaction(self, _: float) -> None:
        self._timed_out()

    def commit_transaction(self, _: float) -> None:
        self._timed_out()

    def send_offsets_to_transaction(self, *_: Any) -> None:
        self._timed_out()

    def purge(self) -> None:
        self.purged = True


@pytest.fixture
def txn(monkeypatch: pytest.MonkeyPatch) -> Transactions:
    StuckProducer.made = []
    # the first producer is stuck; the one that replaces it works
    monkeypatch.setattr(transactions, "make_producer",
                        lambda *_, **__: StuckProducer(stuck=not StuckProducer.made))  # fmt: skip
    monkeypatch.setattr(transactions, "GIVE_UP_S", 0.3)
    t = Transactions(KafkaSettings(), {}, KafkaWait("test", log_every_s=60), lambda: None,
                     Event())  # fmt: skip
    t._count = lambda _: None  # no node to ask here
    t.init()
    return t


def test_an_abort_that_never_goes_through_replaces_the_producer(txn: Transactions) -> None:
    txn.begin()
    txn.abort()  # returns: it used to wait for ever
    assert not txn.open
    assert len(StuckProducer.made) == 2, "a new producer took over (its init fences the old)"
    assert StuckProducer.made[0].purged and txn.producer is StuckProducer.made[1]


def test_a_commit_that_never_goes_through_is_given_up_on(txn: Transactions) -> None:
    txn.begin()
    with pytest.raises(KafkaException, match=r"not through in 0\.3s"):
        txn.commit([], object())  # the caller then aborts and rewinds
    assert txn.open, "still open: the abort that follows ends it"

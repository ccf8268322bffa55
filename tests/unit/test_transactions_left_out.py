"""A transaction coordinator the cluster no longer counts is not waited on.

A node cut off from the others while its clients reach it keeps answering for the
transactions it coordinated, refusing each call as "concurrent", and librdkafka keeps
asking it: the processor waited minutes with no alert written. Here a producer that
knows the left-out node is refused like that for as long as it lives; one told only of
the nodes the cluster counts finds the coordinator the cluster elected."""

from __future__ import annotations

import time
from threading import Event
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException
from structlog.testing import capture_logs

from streams.counted_nodes import Count
from streams.kafka import KafkaWait
from streams.runtime import transactions
from streams.runtime.transactions import Transactions
from streams.settings import KafkaSettings

pytestmark = pytest.mark.timeout(30)  # a wait that never ends fails here, not the run

CUT_OFF = "n1:9092"
COUNTED = Count({2: "n2:9092", 3: "n3:9092"}, frozenset({1}))
EVERYONE = Count({1: CUT_OFF, 2: "n2:9092", 3: "n3:9092"}, frozenset())


class Producer:
    """Refused by a stale coordinator while it knows the cut-off node."""

    made: list[Producer] = []
    cut_off = True  # the node is cut off: a producer that knows it asks it

    def __init__(self, bootstrap: str, refusals: int) -> None:
        self.bootstrap, self.refusals, self.purged = bootstrap, refusals, False
        self.aborts = 0
        Producer.made.append(self)

    def _coordinator(self) -> None:
        if (Producer.cut_off and CUT_OFF in self.bootstrap) or self.refusals > 0:
            self.refusals -= 1
            raise KafkaException(KafkaError(KafkaError.CONCURRENT_TRANSACTIONS,
                                            "concurrent operation", retriable=True))  # fmt: skip

    def init_transactions(self, _: float) -> None:
        self._coordinator()

    def begin_transaction(self) -> None:
        pass

    def abort_transaction(self, _: float) -> None:
        self.aborts += 1
        self._coordinator()

    def commit_transaction(self, _: float) -> None:
        self._coordinator()

    def send_offsets_to_transaction(self, *_: Any) -> None:
        self._coordinator()

    def purge(self) -> None:
        self.purged = True


def transactions_on(monkeypatch: pytest.MonkeyPatch, cluster: Count,
                    refusals: int = 0) -> Transactions:  # fmt: skip
    """Transactions bootstrapped at every node, the cluster counting as `cluster` says;
    a producer told only of the counted nodes is refused `refusals` times first (its
    coordinator finishing what the old one left)."""
    Producer.made, Producer.cut_off = [], True
    monkeypatch.setattr(transactions, "make_producer", lambda s, **_: Producer(
        s.bootstrap_servers, refusals if CUT_OFF not in s.bootstrap_servers else 0))  # fmt: skip
    monkeypatch.setattr(transactions, "NARROW_AFTER_S", 0.05)
    settings = KafkaSettings(bootstrap_servers="n1:9092,n2:9092,n3:9092")
    t = Transactions(settings, {}, KafkaWait("test", log_every_s=60), lambda: None, Event())
    t._count = lambda _: cluster
    return t


def test_init_refused_by_a_left_out_coordinator_goes_on_with_the_counted_nodes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    txn = transactions_on(monkeypatch, COUNTED, refusals=2)
    txn.init()  # returns: it used to be refused for as long as the node was cut off
    assert [p.bootstrap for p in Producer.made] == ["n1:9092,n2:9092,n3:9092",
                                                    "n2:9092,n3:9092"]  # fmt: skip
    assert Producer.made[0].purged and txn.producer is Producer.made[1]


def test_an_abort_stuck_on_a_left_out_coordinator_replaces_the_producer_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    txn = transactions_on(monkeypatch, EVERYONE)
    Producer.cut_off = False
    txn.init()
    txn.begin()
    Producer.cut_off, txn._count = True, lambda _: COUNTED  # cut off mid-transaction
    began = time.monotonic()
    txn.abort()
    assert time.monotonic() - began < transactions.GIVE_UP_S / 2, "not the give-up timer"
    assert not txn.open
    assert txn.producer.bootstrap == "n2:9092,n3:9092"


def test_a_commit_stuck_on_a_left_out_coordinator_is_given_up_naming_the_node(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    txn = transactions_on(monkeypatch, COUNTED)
    txn.init()
    txn._count = lambda _: COUNTED
    txn.begin()
    txn.producer.refusals = 10**6  # the coordinator it found turns stale in turn
    txn.narrowed = None  # as if it had been told of every node
    with pytest.raises(KafkaException, match=r"left out nodes \[1\]"):
        txn.commit([], object())
    assert txn.open
    stale = txn.producer
    txn.abort()  # what the caller does next: the abort would wait on the same node
    assert stale.aborts == 0 and stale.purged
    assert not txn.open and txn.producer.bootstrap == "n2:9092,n3:9092"


def test_a_coordinator_the_cluster_counts_is_waited_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # finishing the last transaction's markers: refused a while, then through
    txn = transactions_on(monkeypatch, EVERYONE)
    Producer.made[0].bootstrap = "n2:9092"  # not the cut-off node: its refusals end
    Producer.made[0].refusals = 3
    txn.init()
    assert len(Producer.made) == 1, "the same producer: no node is left out"


def test_a_producer_already_told_only_of_the_counted_nodes_is_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    txn = transactions_on(monkeypatch, COUNTED, refusals=3)
    txn.init()
    assert len(Producer.made) == 2, "replaced once, then waited on"


def test_a_producer_replaced_for_another_reason_is_still_told_only_of_the_counted_nodes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    txn = transactions_on(monkeypatch, COUNTED)
    txn.init()
    assert txn.producer.bootstrap == "n2:9092,n3:9092"
    txn.replace("fenced by a newer instance")  # the node still cut off
    assert txn.producer.bootstrap == "n2:9092,n3:9092"
    assert len(Producer.made) == 3


def test_the_count_is_logged_when_it_changes_not_each_time_it_is_taken(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    counts = [EVERYONE, EVERYONE, EVERYONE, COUNTED, COUNTED]
    txn = transactions_on(monkeypatch, EVERYONE)
    txn._count = lambda _: counts.pop(0)
    with capture_logs() as logs:
        for _ in range(5):
            txn._left_out_now()
    heard = [(e["counted"], e["left_out"]) for e in logs if e["event"] == "nodes_counted"]
    assert heard == [([1, 2, 3], []), ([2, 3], [1])]

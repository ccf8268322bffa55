"""What a worker is handed: a batch of consumed records split into runs of one
partition, with fetch errors, end-of-partition events and records of partitions the
worker does not hold taken out."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaError, KafkaException, Message

from schemas.errors import TocsinError
from streams.kafka import KafkaWait

TP = tuple[str, int]
# records of one partition, in offset order; consecutive in the batch as librdkafka
# returns them, so a worker does one look-up of its per-partition state per run
Run = tuple[TP, list[Message]]


@dataclass(frozen=True, slots=True)
class Assigned:
    """A partition given to this worker, with the group's committed offset for it
    (negative: nothing committed yet)."""

    topic: str
    partition: int
    committed: int

    @property
    def tp(self) -> TP:
        return (self.topic, self.partition)


class ConsumerFenced(TocsinError, KafkaException):
    """The consumer hit a fatal error (fenced from its group): it must be replaced."""


def fetch(consumer: Consumer, n: int, wait_s: float) -> list[Message]:
    """Up to `n` records, what has arrived, at once: a batch never waits to fill. Under
    load the records that came while the last batch was processed make the next one
    (batches grow with the load); with nothing there it waits up to `wait_s` for the
    first (consume(n, timeout) would wait for n records or the whole timeout)."""
    msgs = consumer.consume(n, timeout=0)
    if msgs or wait_s <= 0:
        return msgs
    first = consumer.poll(wait_s)
    if first is None:
        return []
    if n == 1:
        return [first]
    return [first, *consumer.consume(n - 1, timeout=0)]


def split_runs(msgs: list[Message], held: Collection[TP], wait: KafkaWait,
               counts: dict[str, int]) -> list[Run]:  # fmt: skip
    """The batch's records in runs of one partition, only of partitions in `held`;
    `counts` gets the records handed over, per topic. A fetch error is said through
    `wait` (librdkafka reconnects by itself); a fatal one raises ConsumerFenced: after an
    outage the group can fence this very consumer (its old member id against its
    rejoined one), and it must then be replaced."""
    runs: list[Run] = []
    run: list[Message] = []
    run_topic, run_partition = "", -1
    for msg in msgs:
        err = msg.error()
        if err is not None:
            if err.fatal() or err.code() == KafkaError._FATAL:
                raise ConsumerFenced(err)
            if err.code() != KafkaError._PARTITION_EOF:
                wait.waiting("the broker (fetch)", err)
            continue
        partition, topic = msg.partition(), msg.topic()
        if partition != run_partition or topic != run_topic:
            if run:
                _keep(runs, (run_topic, run_partition), run, held, counts)
            run, run_topic, run_partition = [msg], topic or "", partition or 0
        else:
            run.append(msg)
    if run:
        _keep(runs, (run_topic, run_partition), run, held, counts)
    return runs


def _keep(runs: list[Run], key: TP, run: list[Message], held: Collection[TP],
          counts: dict[str, int]) -> None:  # fmt: skip
    if key in held:  # else revoked between fetch and now: the new owner processes it
        runs.append((key, run))
        counts[key[0]] = counts.get(key[0], 0) + len(run)

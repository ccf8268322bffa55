"""The stall watchdog on the real broker: records waiting behind an offset that does
not move are a stall; progress, an empty partition or another worker's partition are not."""

from __future__ import annotations

from confluent_kafka import Consumer, TopicPartition

from streams.agents.watchdog import StallWatchdog
from streams.catalog import Catalog
from streams.kafka import make_admin, make_producer
from streams.settings import KafkaSettings


def test_a_partition_with_waiting_records_and_a_frozen_offset_is_a_stall(
    kafka_settings: KafkaSettings, topics: Catalog
) -> None:
    alerts = topics.name("alerts")
    group = f"{kafka_settings.topic_prefix}tocsin-agents"
    producer = make_producer(kafka_settings)
    for _ in range(5):
        producer.produce(alerts, value=b"x", partition=0)
    assert producer.flush(10) == 0
    committer = Consumer({"bootstrap.servers": kafka_settings.bootstrap_servers,
                          "group.id": group, "enable.auto.commit": False})  # fmt: skip
    committer.commit(offsets=[TopicPartition(alerts, 0, 2)], asynchronous=False)

    now = [0.0]
    dog = StallWatchdog(kafka_settings, group, [alerts], stall_after=15, clock=lambda: now[0])
    mine = [(alerts, 0), (alerts, 1)]  # partition 1 is empty: never a stall
    try:
        assert dog.check(mine) == []  # first look: nothing to compare with
        now[0] = 10
        assert dog.check(mine) == [], "not yet stalled for 15 s"
        now[0] = 16
        [stall] = dog.check(mine)
        assert (stall.topic, stall.partition, stall.committed, stall.end) == (alerts, 0, 2, 5)
        leader = make_admin(kafka_settings).list_topics(alerts, timeout=10).topics[alerts]
        assert dog.leaders == {
            (alerts, 0): leader.partitions[0].leader,
            (alerts, 1): leader.partitions[1].leader,
        }, "where to fetch"

        assert not dog.wait.stalled, "one stall is put back, not yet waited on"
        now[0] = 32
        dog.check(mine)
        now[0] = 48
        [again] = dog.check(mine)
        assert again.partition == 0 and dog.wait.stalled
        assert dog.wait.what == f"the stalled partition {alerts}[0], put back 3 times"

        committer.commit(offsets=[TopicPartition(alerts, 0, 3)], asynchronous=False)
        now[0] = 56
        assert dog.check(mine) == [] and not dog.wait.stalled, "consumed again"
        now[0] = 60
        assert dog.check(mine) == [], "the offset moved: progress, not a stall"
        now[0] = 64
        assert dog.check([(alerts, 1)]) == [], "partition 0 went to another worker"
        committer.commit(offsets=[TopicPartition(alerts, 0, 5)], asynchronous=False)
        now[0] = 100
        assert dog.check(mine) == [], "caught up: nothing waits"
    finally:
        dog.close()
        committer.close()


def test_an_unreachable_broker_makes_the_check_wait_not_crash() -> None:
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    away = KafkaSettings(bootstrap_servers=f"127.0.0.1:{port}")
    dog = StallWatchdog(away, "tocsin-agents", ["alerts"])
    dog.renewal.after_s = 0  # a client failing on end is replaced (see renewal.py)
    try:
        assert dog.check([("alerts", 0)]) == [], "an exception here ended the agents worker"
        ready, detail = dog.wait.check()
        assert not ready and "committed offsets" in detail, detail
        assert dog.renewal.renewals == 0
        assert dog.check([]) == [] and not dog.wait.check()[0], "idle, the outage still shows"
        assert dog.renewal.renewals == 1, "the second failure in a row gets a new client"
    finally:
        dog.close()

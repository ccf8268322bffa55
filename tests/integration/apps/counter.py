"""A minimal faust-streaming app: an agent counts words into a changelog-backed table.

Each update is echoed to an output topic as `word=count`, so a test can see
the table's value from outside the worker process.
"""

from __future__ import annotations

import os

import faust

from streams.agents.watchdog import Stall, StallWatchdog, install
from streams.kafka_security import faust_options
from streams.settings import KafkaSettings

PREFIX = os.environ["COUNTER_PREFIX"]

app = faust.App(
    f"{PREFIX}counter",
    **faust_options(KafkaSettings()),  # TOCSIN_BOOTSTRAP_SERVERS, TLS and SASL
    store="memory://",
    topic_partitions=3,
    web_enabled=False,
    processing_guarantee="at_least_once",
    # commit offsets often: at-least-once redelivers whatever was not committed at stop
    broker_commit_interval=0.2,
    datadir=os.environ.get("COUNTER_DATADIR", f"/tmp/{PREFIX}counter-data"),
)
words = app.topic(
    f"{PREFIX}words", key_type=str, value_type=str, key_serializer="raw", value_serializer="raw"
)
out = app.topic(
    f"{PREFIX}counts", key_type=str, value_type=str, key_serializer="raw", value_serializer="raw"
)
counts = app.Table("counts", default=int, partitions=3)


def _stalled(stall: Stall) -> None:
    print(f"partition_stalled {stall}", flush=True)


# as tocsin's agents run faust: a partition a rebalance left unfetched is put back
install(app, StallWatchdog(KafkaSettings(), app.conf.id, [words.get_topic_name()],
                           stall_after=5.0), _stalled, every=1.0)  # fmt: skip


@app.agent(words)
async def count(stream: faust.StreamT[str]) -> None:
    async for _key, word in stream.items():
        counts[word] += 1
        await out.send(key=word, value=f"{word}={counts[word]}")


if __name__ == "__main__":
    app.main()

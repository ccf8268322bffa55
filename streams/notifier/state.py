"""What the notifier must remember across crashes, kept in a compacted topic:
which notifications were delivered, and the Slack message of each incident+channel.

Keys: ``done:<notification id>`` -> unix seconds of delivery, and
``msg:<incident>|<target>`` -> ``channel_id/ts``. A delivered mark older than the
outbox's retention can never be needed again (its notification is gone from
`notifications`), so loading tombstones it: the set stays bounded by what the outbox
can still replay.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from confluent_kafka import Producer

from streams.catalog import Catalog
from streams.kafka import read_topic_keyed
from streams.settings import KafkaSettings


class NotifierState:
    def __init__(self, producer: Producer, topic: str,
                 clock: Callable[[], float] = time.time) -> None:  # fmt: skip
        self._producer = producer
        self._topic = topic
        self._clock = clock
        self.done: set[str] = set()
        self.messages: dict[tuple[str, str], str] = {}
        self._unwritten: list[str] = []

    def load(self, settings: KafkaSettings) -> None:
        keep_s = Catalog(settings).get("notifications").spec.retention_ms / 1000
        horizon = self._clock() - keep_s
        latest: dict[bytes, bytes] = dict(read_topic_keyed(settings, self._topic))
        for key, value in latest.items():
            kind, _, rest = key.decode(errors="replace").partition(":")
            if not value:
                continue  # a tombstone
            if kind == "done":
                if _seconds(value) < horizon:
                    self._producer.produce(self._topic, key=key, value=None)
                    continue
                self.done.add(rest)
            elif kind == "msg":
                incident, _, channel = rest.partition("|")
                self.messages[(incident, channel)] = value.decode()

    # MessageStore for the Slack sink
    def get(self, incident_id: str, channel: str) -> str | None:
        return self.messages.get((incident_id, channel))

    def put(self, incident_id: str, channel: str, ts: str) -> None:
        if self.messages.get((incident_id, channel)) != ts:
            self.messages[(incident_id, channel)] = ts
            key = f"msg:{incident_id}|{channel}".encode()
            self._producer.produce(self._topic, key=key, value=ts.encode())

    def mark_done(self, notification_id: str) -> None:
        """Done for this process at once; on the topic only at `write_marks`, which the
        worker calls once the notification's receipt was acknowledged: a mark that
        reached Kafka without its receipt would skip the notification after a crash and
        its receipt would never be written."""
        self.done.add(notification_id)
        self._unwritten.append(notification_id)

    def write_marks(self) -> int:
        """Produce the marks of everything done since the last call; returns how many."""
        stamp = str(int(self._clock())).encode()
        for notification_id in self._unwritten:
            self._producer.produce(self._topic, key=f"done:{notification_id}".encode(),
                                   value=stamp)  # fmt: skip
        written, self._unwritten = len(self._unwritten), []
        return written


def _seconds(value: bytes) -> float:
    """The delivery time of a mark; marks written before times were kept count as new."""
    try:
        seconds = float(value)
    except ValueError:
        return float("inf")
    return seconds if seconds > 1e9 else float("inf")  # the old b"1" marks

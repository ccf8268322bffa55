"""What the notifier must remember across crashes, kept in a compacted topic:
which notifications were delivered, and the Slack message of each incident+channel."""

from __future__ import annotations

from confluent_kafka import Producer

from streams.kafka import read_topic_keyed
from streams.settings import KafkaSettings


class NotifierState:
    def __init__(self, producer: Producer, topic: str) -> None:
        self._producer = producer
        self._topic = topic
        self.done: set[str] = set()
        self.messages: dict[tuple[str, str], str] = {}

    def load(self, settings: KafkaSettings) -> None:
        for key, value in read_topic_keyed(settings, self._topic):
            kind, _, rest = key.decode().partition(":")
            if kind == "done":
                self.done.add(rest)
            elif kind == "msg" and value:
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
        self.done.add(notification_id)
        self._producer.produce(self._topic, key=f"done:{notification_id}".encode(), value=b"1")

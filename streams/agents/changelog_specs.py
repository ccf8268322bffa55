"""The agents' changelogs as the agents create them, for `tocsin topics check|fix`, which
check and repair them without running the agents."""

from __future__ import annotations

from confluent_kafka.admin import NewTopic  # type: ignore[attr-defined]

from streams.agents.changelogs import new_topics
from streams.settings import KafkaSettings


def changelog_topics(settings: KafkaSettings) -> list[NewTopic]:
    """The changelog of each of the agents' tables, read off the app `tocsin run agents`
    builds by the code the agents create them with: a table added to the agents is
    checked and repaired with nothing to change here."""
    # faust is slow to import, and no other topics command needs it
    from schemas.config import Config
    from streams.agents.app import build_app

    # build_app makes the outbox's producer and the router's consumer at once; without
    # bootstrap servers they never connect: this app is only read, never run. Its
    # changelogs depend on the prefix and the replication settings, not on the tenants'
    # configuration, hence an empty one
    offline = settings.model_copy(update={"bootstrap_servers": ""})
    return new_topics(build_app(offline, Config()))

"""The agents' table changelogs: there before faust joins its group, and assigned with
the partitions whose state they hold.

faust creates a table's changelog at start, just before its consumer subscribes. A
topic the broker has not yet listed (it learns of a new topic from the controller a
moment after the create returns: longer on a loaded machine) is missing from that
consumer's metadata, and faust's assignor then ignores it ("Ignoring missing topic")
until that consumer next refreshes its metadata. Every worker is then given its
`incident-work` partitions without their changelog partitions: nothing is restored on
a rebalance, and a worker taking partitions over decides on an empty table. It opens
a second incident for every group it took over and pages for each.

So the worker creates the changelogs itself, exactly as faust would, and waits until
they are listed and served before faust starts (`declare`); and after every
assignment it checks that each partition given to it came with its changelog partition
(`unrestored`). A worker that finds one without it ends at once (nothing of the new
assignment has been processed yet): a fresh start asks the broker for metadata again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from confluent_kafka.admin import NewTopic  # type: ignore[attr-defined]

from streams.admin import create_missing
from streams.kafka import quiet_admin
from streams.settings import KafkaSettings


def new_topics(app: Any) -> list[NewTopic]:
    """The changelog of each of the app's tables, as faust itself would create it."""
    out = []
    for table in app.tables.values():
        topic = table.changelog_topic
        config = {k: str(v) for k, v in (topic.config or {}).items()}
        cleanup = sorted(p for p, on in (("compact", topic.compacting),
                                         ("delete", topic.deleting)) if on)  # fmt: skip
        if cleanup:
            config["cleanup.policy"] = ",".join(cleanup)
        if topic.retention:
            config["retention.ms"] = str(int(float(topic.retention) * 1000))
        out.append(NewTopic(
            topic.get_topic_name(),
            num_partitions=topic.partitions or app.conf.topic_partitions,
            replication_factor=topic.replicas or app.conf.topic_replication_factor,
            config=config,
        ))  # fmt: skip
    return out


def declare(settings: KafkaSettings, app: Any) -> list[str]:
    """Create the missing changelogs and wait until every partition is led and served;
    the names created."""
    return create_missing(quiet_admin(settings, "changelogs"), new_topics(app))


def unrestored(sources: Mapping[str, str], assigned: Iterable[Any],
               actives: Iterable[Any]) -> list[str]:  # fmt: skip
    """`sources` maps each changelog to the topic whose partitions its table's state
    follows. The partitions of those topics in `assigned` whose changelog partition is
    not among `actives` (the changelog partitions this worker restores), as topic[n]."""
    restored = {(tp.topic, tp.partition) for tp in actives}
    return sorted(f"{tp.topic}[{tp.partition}]" for tp in assigned
                  for changelog, source in sources.items()
                  if tp.topic == source and (changelog, tp.partition) not in restored)  # fmt: skip

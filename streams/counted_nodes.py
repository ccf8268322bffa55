"""Which nodes the cluster counts, asked of each node in turn.

A node cut off from the others while its clients still reach it answers them with the
metadata it had: itself as the leader of partitions that moved, and as the coordinator
of transactions whose log moved and which it can no longer finish. A client that asks
that node alone cannot tell. The other nodes stop listing a node once the controllers
fence it, so a node that most nodes do not list is one a client should not ask.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from threading import Lock, Thread

import structlog
from aiokafka.client import AIOKafkaClient
from aiokafka.errors import KafkaError

from streams.kafka_security import aiokafka_options
from streams.settings import KafkaSettings

log = structlog.get_logger(__name__)
ASK_TIMEOUT_S = 5.0  # a node that has not answered by then is left out of the count


@dataclass(frozen=True)
class View:
    """What one node says the cluster is: node id to address."""

    lists: dict[int, str]


def asked(settings: KafkaSettings, address: str, timeout: float = ASK_TIMEOUT_S) -> View | None:
    """The view of the node at `address`, asked of that node itself (librdkafka would ask
    whichever node it picks); None when it did not answer."""
    try:
        return asyncio.run(asyncio.wait_for(_asked(settings, address, timeout), timeout))
    except TimeoutError:
        return None


async def _asked(settings: KafkaSettings, address: str, within_s: float) -> View | None:
    client = AIOKafkaClient(
        bootstrap_servers=address,
        request_timeout_ms=int(within_s * 1000),
        **aiokafka_options(settings),
    )
    try:
        # its bootstrap asks the first address that answers, and that node only
        await client.bootstrap()
        return View({b.nodeId: f"{b.host}:{b.port}" for b in client.cluster.brokers()})
    except (TimeoutError, KafkaError, OSError):
        return None
    finally:
        await client.close()


@dataclass(frozen=True)
class Count:
    """The nodes more than half of the answering nodes list, and those they do not."""

    counted: dict[int, str]
    left_out: frozenset[int]

    @property
    def bootstrap(self) -> str:
        return ",".join(self.counted[n] for n in sorted(self.counted))

    def narrow(self, settings: KafkaSettings) -> KafkaSettings:
        """`settings` told only of the counted nodes when some node is left out."""
        if not self.left_out or not self.counted:
            return settings
        return settings.model_copy(update={"bootstrap_servers": self.bootstrap})


# node id to address of every node a count heard of, per bootstrap list: a single
# load-balanced bootstrap name may never lead a count to the node that is cut off (the
# others stop listing it), though the clients it is about still talk to it
_heard_of: dict[str, dict[int, str]] = {}
_heard_lock = Lock()


def count(settings: KafkaSettings, timeout: float = ASK_TIMEOUT_S) -> Count | None:
    """Every node any answer names, or an earlier count heard of, each asked at its own
    address; None when no node answered. Each bootstrap address is asked on its own
    first: a node the others fenced is named by no one but itself, and one that hangs
    would hold a bootstrap that tries the addresses in turn until the count's time is up."""
    boot = [a.strip() for a in settings.bootstrap_servers.split(",") if a.strip()]
    with _heard_lock:
        known = dict(_heard_of.get(settings.bootstrap_servers, {}))
    with ThreadPoolExecutor(4, thread_name_prefix="count") as pool:
        heard = [v for v in pool.map(lambda a: asked(settings, a, timeout), boot) if v]
        if not heard:
            return None
        named = {n: a for v in heard for n, a in v.lists.items()}
        addresses = known | named
        # one vote per node, asked where it says it is (a bootstrap name may be an alias)
        answers = dict(zip(addresses, pool.map(lambda a: asked(settings, a, timeout),
                                               addresses.values()), strict=True))  # fmt: skip
    votes = [v for v in answers.values() if v is not None] or heard[:1]
    listed_by = {n: sum(n in v.lists for v in votes) for n in addresses}
    # a node only an earlier count heard of, that no one lists and that does not answer,
    # is gone (removed, or dead): it is neither counted nor left out, and forgotten
    gone = {n for n in known if n not in named and not listed_by[n] and answers[n] is None}
    addresses = {n: a for n, a in addresses.items() if n not in gone}
    with _heard_lock:
        _heard_of[settings.bootstrap_servers] = addresses
    counted = {n: addresses[n] for n, k in listed_by.items() if 2 * k > len(votes)}
    return Count(counted, frozenset(addresses) - frozenset(counted))


def hear_of_nodes(settings: KafkaSettings) -> None:
    """A count on a thread of its own, at a worker's start: a later count then asks every
    node the cluster had, whatever node a load-balanced bootstrap name leads to."""
    Thread(target=count, args=(settings,), name="count-at-start", daemon=True).start()


def some_counted(settings: KafkaSettings) -> bool:
    """Whether a majority of the answering nodes agree on at least one node: the cluster
    answers, whatever one client's connections are waiting for."""
    found = count(settings)
    return found is not None and bool(found.counted)


def left_out(settings: KafkaSettings) -> Count | None:
    """The count, when it leaves a node out and counts some; None otherwise."""
    found = count(settings)
    return found if found is not None and found.left_out and found.counted else None


def counted_settings(settings: KafkaSettings) -> KafkaSettings:
    """`settings` told only of the nodes the cluster counts, when it leaves one out (a
    client that reads from a node cut off from the others reads the log as it was when
    the cut began); unchanged when it leaves none out or no node answers."""
    found = left_out(settings)
    if found is None:
        return settings
    log.info("nodes_counted", counted=sorted(found.counted), left_out=sorted(found.left_out))
    return found.narrow(settings)

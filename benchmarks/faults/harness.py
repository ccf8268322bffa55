"""What every fault scenario needs: workers as real `tocsin run` processes, kill -9,
committed topic contents, raw-record comparison and the result row.

The fault tests import this too, so a soak and a test of the same scenario measure
the same thing; nothing here imports from tests/.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from confluent_kafka import Consumer, KafkaException, TopicPartition

from harness.settled import settled_end
from harness.workers import kill9 as kill9
from streams.settings import KafkaSettings

KEPT = Path(".faults")  # what a failed scenario leaves for reading


def keep(name: str, output: bytes) -> Path:
    """A failed scenario's output, kept in the checkout: its temporary directory goes with
    the soak."""
    path = KEPT / f"{name}-{time.strftime('%Y%m%dT%H%M%S')}.log"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(output)
    return path


def worker_env(settings: KafkaSettings, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "TOCSIN_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
        "TOCSIN_TOPIC_PREFIX": settings.topic_prefix,
        "TOCSIN_PARTITIONS": str(settings.partitions),
        "TOCSIN_LOG_FORMAT": "json",
        **extra,
    }


def start(
    kind: str, args: list[str], settings: KafkaSettings, log: Path, **env: str
) -> subprocess.Popen[bytes]:
    """`tocsin run KIND ARGS` in its own process group, output appended to ``log``."""
    cmd = [sys.executable, "-m", "streams.cli.main", "run", kind, *args]
    return subprocess.Popen(
        cmd,
        env=worker_env(settings, **env),
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def exited_by_itself(proc: subprocess.Popen[bytes]) -> bool:
    """The worker ended without our signal: an exit Kubernetes would have to fix."""
    return proc.poll() is not None and proc.returncode not in (-signal.SIGKILL,)


def wait_for(
    pred: Callable[[], object],
    timeout: float,
    what: str,
    log: Path | None = None,
    proc: subprocess.Popen[bytes] | None = None,
    every: float = 0.5,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:] if log else ""
            raise AssertionError(f"the worker exited while waiting for {what}\n{tail}")
        if pred():
            return
        time.sleep(every)
    tail = log.read_text(errors="replace")[-3000:] if log else ""
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}\n{tail}")


def read_partitions(settings: KafkaSettings, topic: str) -> dict[int, list[tuple[bytes, bytes]]]:
    """Every committed (key, value) of a topic by partition in offset order; retried while
    a topic created a moment ago has no leader yet."""
    for attempt in range(20):
        try:
            return _read_partitions(settings, topic)
        except KafkaException:
            if attempt == 19:
                raise
            time.sleep(0.5)
    raise AssertionError("unreachable")


def _read_partitions(settings: KafkaSettings, topic: str) -> dict[int, list[tuple[bytes, bytes]]]:
    c = Consumer(
        settings.client_config()
        | {
            "group.id": "fault-reader-unused",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            # the next watermark query waits behind a fetch parked at the broker
            "fetch.wait.max.ms": 10,
        }
    )
    out: dict[int, list[tuple[bytes, bytes]]] = defaultdict(list)
    try:
        meta = c.list_topics(topic, timeout=10).topics[topic]
        if meta.error is not None:
            raise KafkaException(meta.error)
        for p in sorted(meta.partitions):
            # a killed worker's open transaction holds back what was committed after it
            low, high = settled_end(c, settings, topic, p)
            if high <= low:
                continue
            c.assign([TopicPartition(topic, p, low)])
            pos = low
            deadline = time.monotonic() + 60
            while pos < high and time.monotonic() < deadline:
                for m in c.consume(min(5000, high - pos), timeout=0.5):
                    if not m.error():
                        out[p].append((m.key() or b"", m.value() or b""))
                pos = c.position([TopicPartition(topic, p)])[0].offset
            c.unassign()
    finally:
        c.close()
    return out


def read_values(settings: KafkaSettings, topic: str) -> list[bytes]:
    return [v for recs in read_partitions(settings, topic).values() for _, v in recs]


def copy_topic(src: KafkaSettings, dst: KafkaSettings, topic: str) -> int:
    """Copy ``topic`` from one prefix to another partition by partition, in order: the
    copy has the same records at the same offsets (no transaction markers in between)."""
    from streams.kafka import make_producer

    producer = make_producer(dst)
    n = 0
    for p, records in read_partitions(src, src.topic_prefix + topic).items():
        for key, value in records:
            while True:
                try:
                    producer.produce(dst.topic_prefix + topic, key=key, value=value, partition=p)
                    break
                except BufferError:
                    producer.poll(0.05)
            n += 1
        producer.poll(0)
    assert producer.flush(60) == 0
    return n


def committed_lag(settings: KafkaSettings, group: str, topics: Iterable[str]) -> int:
    """Records of ``topics`` the group has not committed yet (-1 when it cannot tell)."""
    c = Consumer(settings.client_config() | {"group.id": group, "enable.auto.commit": False})
    behind = 0
    try:
        for topic in topics:
            meta = c.list_topics(topic, timeout=10).topics[topic]
            tps = [TopicPartition(topic, p) for p in meta.partitions]
            for tp in c.committed(tps, timeout=10):
                _, high = c.get_watermark_offsets(tp, timeout=10)
                # the last offset may be a transaction marker of a transactional producer
                if tp.offset < 0:
                    behind += high
                else:
                    behind += max(0, high - tp.offset - 1)
    except KafkaException:
        return -1
    finally:
        c.close()
    return behind


@dataclass
class Diff:
    """A raw-record comparison: multisets, so a duplicate shows as one."""

    lost: int = 0
    duplicated: int = 0
    examples: list[str] = field(default_factory=list)

    def __iadd__(self, other: Diff) -> Diff:
        self.lost += other.lost
        self.duplicated += other.duplicated
        self.examples += other.examples[: max(0, 6 - len(self.examples))]
        return self

    @property
    def clean(self) -> bool:
        return not self.lost and not self.duplicated


def compare(what: str, got: Iterable[Hashable], want: Iterable[Hashable]) -> Diff:
    g, w = Counter(got), Counter(want)
    missing, extra = w - g, g - w
    d = Diff(sum(missing.values()), sum(extra.values()))
    d.examples += [f"{what}: lost {k!r:.160}" for k in list(missing)[:3]]
    d.examples += [f"{what}: extra {k!r:.160} x{n}" for k, n in list(extra.items())[:3]]
    return d


@dataclass
class Row:
    """One scenario's line of the final table."""

    scenario: str
    trials: int
    lost: int
    duplicated: int
    max_latency: float | None
    exits: int
    ok: bool
    rerun: str
    notes: list[str] = field(default_factory=list)
    wall: float | None = None  # seconds the scenario took, start-up and comparison included

    @property
    def verdict(self) -> str:
        return "pass" if self.ok else "FAIL"


def table(rows: list[Row]) -> str:
    head = ("scenario", "trials", "lost", "duplicated", "max latency", "exits", "verdict",
            "wall", "rerun")  # fmt: skip
    lines = [
        (
            r.scenario,
            str(r.trials),
            str(r.lost),
            str(r.duplicated),
            "-" if r.max_latency is None else f"{r.max_latency:.1f}s",
            str(r.exits),
            r.verdict,
            "-" if r.wall is None else f"{r.wall:.0f}s",
            r.rerun,
        )
        for r in rows
    ]
    widths = [max(len(x) for x in col) for col in zip(head, *lines, strict=True)]
    fmt = " | ".join(f"{{:{w}}}" for w in widths)
    out = [fmt.format(*head), "-+-".join("-" * w for w in widths)]
    out += [fmt.format(*line) for line in lines]
    return "\n".join(out)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_gateway(
    settings: KafkaSettings,
    log: Path,
    port: int,
    token: str,
    signing: str,
    *args: str,
    **env: str,
) -> subprocess.Popen[bytes]:
    """A gateway process on 127.0.0.1:``port`` with one bearer token and a Slack signing
    secret (the intake keys accept the PagerDuty routing key "RKEY")."""
    return start("gateway", ["--host", "127.0.0.1", "--port", str(port), *args], settings, log,
                 **{"TOCSIN_GATEWAY_TOKENS": token, "SLACK_SIGNING_SECRET": signing,
                    "TOCSIN_PAGERDUTY_INTAKE_KEYS": "RKEY", "TOCSIN_SLACK_RESPONDERS": "U_SRE",
                    **env})  # fmt: skip


def wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    import httpx

    def up() -> bool:
        try:
            return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(up, timeout, "the gateway's health check", log, proc, every=0.2)


def peak_rss(pid: int) -> int:
    """The process's peak resident memory so far (VmHWM), in bytes."""
    return _status(pid, "VmHWM")


def children_peak_rss(pid: int) -> dict[int, int]:
    """The peak resident memory of each of the process's descendants (the gateway's
    decoding processes), by pid."""
    return {p: _status(p, "VmHWM") for p in descendants(pid)}


def descendants(pid: int) -> list[int]:
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # gone meanwhile
            continue
        fields = text.rsplit(")", 1)[1].split()
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _status(pid: int, field: str) -> int:
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return 0
    for line in lines:
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    return 0


def rss(pid: int) -> int:
    return _status(pid, "VmRSS")

"""Real workers as child processes (each in its own session, so a kill reaches the
whole process group), and the waits around them, with bounded deadlines."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from confluent_kafka import Consumer, KafkaException, TopicPartition

from streams.catalog import Catalog
from streams.settings import KafkaSettings

DEFAULT_INSTANCE = "w1"  # a processor's instance id unless a test names another


def start_worker(
    settings: KafkaSettings,
    rules: Path,
    log: Path,
    instance: str = DEFAULT_INSTANCE,
    checkpoint_every: float = 10.0,
    batch_size: int = 20_000,  # the CLI default
    max_wait_ms: float = 20.0,
    group: str | None = None,
    commit_every_ms: float = 1000.0,  # the CLI default
    commit_linger_ms: float = 20.0,  # the CLI default
    config: Path | None = None,  # an installation: its tenants' own rules join the pack
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "TOCSIN_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
        "TOCSIN_TOPIC_PREFIX": settings.topic_prefix,
        "TOCSIN_PARTITIONS": str(settings.partitions),
        "TOCSIN_REPLICATION_FACTOR": str(settings.replication_factor),
        "TOCSIN_LOG_FORMAT": "json",
    }
    cmd = [sys.executable, "-m", "streams.cli.main", "run", "processor", "--rules", str(rules),
           "--instance-id", instance, "--group", group or f"{settings.topic_prefix}processor",
           "--health-port", "0", "--checkpoint-every", str(checkpoint_every),
           "--batch-size", str(batch_size), "--max-wait-ms", str(max_wait_ms),
           "--commit-every-ms", str(commit_every_ms),
           "--commit-linger-ms", str(commit_linger_ms)]  # fmt: skip
    if config is not None:
        cmd += ["--config", str(config)]
    return subprocess.Popen(
        cmd, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True
    )


def start_agents(settings: KafkaSettings, config: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "TOCSIN_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
           "TOCSIN_TOPIC_PREFIX": settings.topic_prefix,
           "TOCSIN_PARTITIONS": str(settings.partitions), "TOCSIN_LOG_FORMAT": "json"}  # fmt: skip
    cmd = [sys.executable, "-m", "streams.cli.main", "run", "agents", "--config", str(config),
           "--tick-every", "0.5", "--health-port", "0", "--faust-loglevel", "info",
           "--datadir", str(log.parent / "faust")]  # fmt: skip
    return subprocess.Popen(cmd, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT,
                            start_new_session=True)  # fmt: skip


def start_notifier(settings: KafkaSettings, log: Path, **env: str) -> subprocess.Popen[bytes]:
    """`tocsin run notifier`; `env` adds its sinks' settings (TOCSIN_SLACK_BASE_URL...)."""
    env = {**os.environ, "TOCSIN_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
           "TOCSIN_TOPIC_PREFIX": settings.topic_prefix, "TOCSIN_LOG_FORMAT": "json",
           **env}  # fmt: skip
    cmd = [sys.executable, "-m", "streams.cli.main", "run", "notifier", "--health-port", "0"]
    return subprocess.Popen(cmd, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT,
                            start_new_session=True)  # fmt: skip


def health_port(log: Path, timeout: float = 60.0) -> int:
    # a generous bound: a worker's interpreter start-up alone took over 20 s on a
    # machine busy with brokers starting
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = re.findall(rb'"health_port": ?(\d+)', log.read_bytes())
        if found:
            return int(found[-1])
        time.sleep(0.2)
    raise AssertionError(f"worker never reported its health port:\n{log.read_text()[-2000:]}")


def kill9(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        # two killers may race (a trial's timer and a fault hook): the loser finds the
        # process group already gone
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _behind(c: Consumer, topics: Sequence[str]) -> int:
    behind = 0
    for topic in topics:
        meta = c.list_topics(topic, timeout=10).topics[topic]
        tps = [TopicPartition(topic, p) for p in meta.partitions]
        for tp in c.committed(tps, timeout=10):
            _, high = c.get_watermark_offsets(tp, timeout=10)
            # the last offset may be a transaction marker of the input producer
            behind += max(0, high - max(tp.offset, 0) - 1) if high else 0
            if tp.offset < 0 and high > 0:
                behind += 1
    return behind


def wait_for_lag_zero(
    settings: KafkaSettings,
    catalog: Catalog,
    group: str,
    timeout: float,
    inputs: Sequence[str] = ("metrics", "logs"),
) -> bool:
    """Until `group` has committed every record of its `inputs` (catalog names; the
    processor's by default): what it has not consumed yet cannot change anything."""
    topics = [catalog.name(t) for t in inputs]
    c = Consumer(
        {
            "bootstrap.servers": settings.bootstrap_servers,
            "group.id": group,
            "enable.auto.commit": False,
        }
    )
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            try:
                behind = _behind(c, topics)
            except KafkaException:
                # a broker formatted moments ago creates __consumer_offsets on the first
                # group look-up: the coordinator is briefly not there yet
                behind = -1
            if behind == 0:
                return True
            time.sleep(0.5)
        return False
    finally:
        c.close()

"""The pipeline the real-Prometheus benchmarks share: gateway, processor, agents and
notifier as separate worker processes on the real broker, paging a local fake Slack,
and a real Prometheus (Debian's package) remote-writing to the gateway.

Each benchmark brings its rules, its scrape targets and its remote-write queue; the
stack stamps every Slack call with its arrival (wall clock) and kills everything it
started, then deletes its topics.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from harness.workers import kill9
from streams.admin import create_topics, delete_prefixed
from streams.broker.local import LocalBroker, port_of
from streams.catalog import Catalog
from streams.demo.fake_slack import FakeSlack, serve
from streams.kafka import broker_reachable, make_admin
from streams.settings import KafkaSettings

PROMETHEUS = shutil.which("prometheus")
TOKEN = "bench-prometheus-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bootstrap() -> str:
    servers = os.environ.get("TOCSIN_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    if not broker_reachable(KafkaSettings(bootstrap_servers=servers)):
        LocalBroker(port=port_of(servers)).start()
    return servers


def _ready(url: str, deadline: float) -> bool:
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    return False


@dataclass
class Stack:
    settings: KafkaSettings
    catalog: Catalog
    tmp: Path
    gateway: str
    env: dict[str, str]
    # (wall-clock arrival, method, arguments) of every Slack call
    slack_calls: list[tuple[float, str, dict[str, Any]]] = field(default_factory=list)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def worker(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        log = (self.tmp / f"{name}.log").open("ab")
        cmd = [sys.executable, "-m", "streams.cli.main", "run", *args]
        proc = subprocess.Popen(cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip
        self.procs[name] = proc
        return proc

    def process(self, name: str, cmd: list[str]) -> subprocess.Popen[bytes]:
        """A peer (Prometheus, node exporter, a load generator) in the stack's temp dir."""
        proc = subprocess.Popen(cmd, stdout=(self.tmp / f"{name}.log").open("ab"),
                                stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        self.procs[name] = proc
        return proc

    def prometheus(self, scrape_s: int, scrape_configs: str, queue_config: str = "") -> int:
        """Start Prometheus remote-writing to the gateway; its port (`{prometheus}` in
        `scrape_configs` stands for its own address)."""
        assert PROMETHEUS is not None
        port = free_port()
        queue = f"\n    queue_config: {queue_config}" if queue_config else ""
        (self.tmp / "prometheus.yml").write_text(
            f"global: {{scrape_interval: {scrape_s}s, evaluation_interval: {scrape_s}s}}\n"
            f"scrape_configs:\n{scrape_configs.replace('{prometheus}', f'127.0.0.1:{port}')}\n"
            f"remote_write:\n  - url: {self.gateway}/api/v1/write\n"
            f"    authorization: {{credentials: {TOKEN}}}{queue}\n"
        )
        self.process("prometheus", [
            PROMETHEUS, f"--config.file={self.tmp / 'prometheus.yml'}",
            f"--storage.tsdb.path={self.tmp / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}"])  # fmt: skip
        return port

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-1500:]}"
                         for p in sorted(self.tmp.glob("*.log")))  # fmt: skip


@contextmanager
def stack(servers: str, rules: str, instance: str) -> Iterator[Stack]:
    """Gateway, processor (`rules` plus the default pack), agents (the example config:
    critical alerts page without group_wait) and notifier, ready to take samples."""
    settings = KafkaSettings(bootstrap_servers=servers,
                             topic_prefix=f"prom{uuid.uuid4().hex[:6]}.")  # fmt: skip
    catalog = Catalog(settings)
    create_topics(make_admin(settings), catalog)
    calls: list[tuple[float, str, dict[str, Any]]] = []
    slack = FakeSlack(on_call=lambda method, args: calls.append((time.time(), method, args)))
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        with tempfile.TemporaryDirectory() as d, serve(slack.app()) as slack_url:
            tmp = Path(d)
            (tmp / "rules.yaml").write_text(rules)
            port = free_port()
            env = {**os.environ, "TOCSIN_BOOTSTRAP_SERVERS": servers,
                   "TOCSIN_TOPIC_PREFIX": settings.topic_prefix, "TOCSIN_LOG_FORMAT": "json",
                   "TOCSIN_SLACK_BASE_URL": f"{slack_url}/api/", "TOCSIN_LOG_LEVEL": "warning",
                   "TOCSIN_GATEWAY_TOKENS": TOKEN}  # fmt: skip
            st = Stack(settings, catalog, tmp, f"http://127.0.0.1:{port}", env, calls, procs)
            st.worker("gateway", ["gateway", "--host", "127.0.0.1", "--port", str(port)])
            st.worker("processor", [
                "processor", "--rules", str(tmp / "rules.yaml"), "--rules", "rules/default.yaml",
                "--instance-id", instance, "--health-port", "0"])  # fmt: skip
            st.worker("agents", [
                "agents", "--config", "examples/config", "--tick-every", "0.2",
                "--health-port", "0", "--datadir", str(tmp / "faust")])  # fmt: skip
            st.worker("notifier", ["notifier", "--health-port", "0"])
            try:
                if not _ready(st.gateway, time.monotonic() + 60):
                    raise RuntimeError((tmp / "gateway.log").read_text()[-2000:])
                time.sleep(10)  # the workers join their groups (as bench_e2e waits for them)
                yield st
            finally:
                for proc in procs.values():
                    kill9(proc)
    finally:
        delete_prefixed(make_admin(settings), settings.topic_prefix)

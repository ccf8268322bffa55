"""Every worker over a secured cluster: a local broker with TLS listeners and SCRAM users.

The broker has no plain-text client listener, so whatever works here went through TLS
and SASL: the demo pipeline (processor, agents with faust, notifier, gateway) over
SASL_SSL with SCRAM-SHA-512, each protocol and mechanism through both client stacks
(librdkafka and faust's aiokafka), and a wrong password ending a worker at once.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

from streams.broker.local import LocalBroker
from streams.broker.secure import BrokerSecurity
from streams.counted_nodes import count
from streams.demo.pipeline import Demo
from streams.kafka import make_admin, make_producer
from streams.kafka_security import KafkaAccessError, faust_credentials, verify_access
from streams.settings import KafkaSettings

PORT = 19692  # SASL_SSL; the controller on 19693, SSL on 19694, SASL_PLAINTEXT on 19695
PASSWORD = secrets.token_urlsafe(16)


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBroker]:
    home = tmp_path_factory.mktemp("secure-broker")
    shared_lib = (Path(os.environ.get("TOCSIN_BROKER_HOME", ".broker")) / "lib").resolve()
    if shared_lib.exists():  # reuse the jar cache instead of asking Maven again
        (home / "lib").symlink_to(shared_lib)
    security = BrokerSecurity(("SASL_SSL", "SSL", "SASL_PLAINTEXT"), {"tocsin": PASSWORD})
    broker = LocalBroker(home=home, port=PORT, heap="384m", security=security)
    broker.start(timeout=180)
    yield broker
    broker.stop()


def test_demo_pages_over_sasl_ssl_with_scram(secured: LocalBroker, tmp_path: Path) -> None:
    settings = secured.client_settings("SASL_SSL", mechanism="SCRAM-SHA-512",
                                       topic_prefix=f"s{uuid.uuid4().hex[:8]}.")  # fmt: skip
    lines: list[str] = []
    demo = Demo(settings, tmp_path, speed=30, echo=lines.append)
    try:
        code = demo.run()  # creates the topics over SASL_SSL, then runs the workers
    finally:
        demo.stop_workers()
    output = "\n".join(lines)
    logs = {p.name: p.read_text(errors="replace") for p in tmp_path.glob("*.log")}
    tails = "\n".join(f"--- {name}\n{text[-2000:]}" for name, text in logs.items())
    # the verdict first (a long output would push it out of sight), then the end of the
    # output and of each worker's log
    verdict = "\n".join(line for line in lines if "NOT go as planned" in line or "problem" in line)
    assert code == 0, f"{verdict or 'no verdict line'}\n{output[-3000:]}{tails}"
    assert output.count("(as planned)") == 5, output[-2000:]  # every fault, as the plan says
    # the pages reached Slack (the fake the demo runs without a token): the notifier read
    # what the agents (faust over SASL_SSL) decided from what the processor emitted
    assert demo.slack is not None
    pages = [m for msgs in demo.slack.messages.values() for m in msgs
             if m["metadata"] and m["metadata"]["event_type"] == "tocsin_page"]  # fmt: skip
    assert pages, output[-2000:]
    assert logs and not [name for name, text in logs.items() if PASSWORD in text], (
        "the SASL password was logged"
    )


COMBINATIONS = [
    ("SSL", "SCRAM-SHA-512"),  # mutual TLS: the mechanism is not used
    *[(p, m) for p in ("SASL_SSL", "SASL_PLAINTEXT")
      for m in ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")],
]  # fmt: skip


@pytest.mark.parametrize(("protocol", "mechanism"), COMBINATIONS)
def test_both_client_stacks_reach_every_listener(
    secured: LocalBroker, protocol: str, mechanism: str
) -> None:
    """What librdkafka (processor, router, outbox, notifier) writes, faust's aiokafka
    (the agents) reads, with the same settings."""
    from confluent_kafka.admin import NewTopic

    settings = secured.client_settings(protocol, mechanism=mechanism)  # type: ignore[arg-type]
    topic = f"combo-{uuid.uuid4().hex[:8]}"
    admin = make_admin(settings)  # kept: the future needs its client alive
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
    producer = make_producer(settings)
    producer.produce(topic, key=b"k", value=protocol.encode())
    assert producer.flush(30) == 0

    async def read() -> bytes:
        import aiokafka  # type: ignore[import-untyped]

        auth = credentials_to_aiokafka_auth(faust_credentials(settings))
        consumer = aiokafka.AIOKafkaConsumer(topic, bootstrap_servers=settings.bootstrap_servers,
                                             auto_offset_reset="earliest", **auth)  # fmt: skip
        await consumer.start()
        try:
            record = await asyncio.wait_for(consumer.getone(), timeout=30)
        finally:
            await consumer.stop()
        return bytes(record.value)

    assert asyncio.run(read()) == protocol.encode()
    # the node count the transactional producers ask for goes through aiokafka as well
    found = count(settings)
    assert found is not None and found.counted and not found.left_out


def test_ssl_listener_refuses_a_client_without_certificate(secured: LocalBroker) -> None:
    settings = secured.client_settings("SSL", ssl_certificate_location=None,
                                       ssl_key_location=None)  # fmt: skip
    with pytest.raises(KafkaAccessError, match="TLS"):
        verify_access(settings, timeout=20)


WORKERS = {
    "topics create": ["topics", "create"],
    "processor": ["run", "processor", "--rules", "rules/default.yaml", "--health-port", "0"],
    "agents": ["run", "agents", "--config", "examples/config/tocsin.yaml", "--health-port", "0"],
}


@pytest.mark.parametrize("command", sorted(WORKERS))
def test_a_wrong_password_ends_the_worker_at_once(secured: LocalBroker, command: str) -> None:
    wrong = secrets.token_urlsafe(12)
    settings: KafkaSettings = secured.client_settings("SASL_SSL", sasl_password=wrong,
                                                      topic_prefix="wrong.")  # fmt: skip
    env = {**os.environ, **settings.environment(), "TOCSIN_LOG_FORMAT": "json"}
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "streams.cli.main", *WORKERS[command]],
                          env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
    took = time.monotonic() - started
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-2000:]
    assert took < 30, f"{command} took {took:.0f} s to give up"
    assert "authentication" in out.lower() and "SCRAM-SHA-512" in out, out[-2000:]
    assert wrong not in out and PASSWORD not in out, "a password was printed"

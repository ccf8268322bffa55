"""The project's own broker tool: idempotent start/stop, stale pidfiles, status."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from streams.broker.local import LocalBroker
from streams.kafka import broker_reachable
from streams.settings import KafkaSettings

PORT = 19192  # a second broker beside the shared one, so this test may stop it


@pytest.fixture(scope="module")
def spare(tmp_path_factory: pytest.TempPathFactory) -> LocalBroker:
    home = tmp_path_factory.mktemp("broker")
    shared_lib = Path(".broker/lib").resolve()
    if shared_lib.exists():  # reuse the jar cache instead of asking Maven again
        (home / "lib").symlink_to(shared_lib)
    b = LocalBroker(home=home, port=PORT, heap="256m")
    yield b
    b.stop()


def _env() -> dict[str, str]:
    import os

    return dict(os.environ)


def test_start_is_idempotent_and_stop_is_safe(spare: LocalBroker) -> None:
    first = spare.start()
    assert first.running and first.reachable
    again = spare.start()
    assert again.pid == first.pid, "a second start must not start a second broker"
    assert spare.stop() is True
    assert not broker_reachable(KafkaSettings(bootstrap_servers=spare.bootstrap))
    assert spare.stop() is False, "stopping a stopped broker is fine"


def test_stale_pidfile_is_replaced(spare: LocalBroker) -> None:
    spare.home.mkdir(parents=True, exist_ok=True)
    spare.pid_file.write_text("999999\n")  # no such process
    status = spare.status()
    assert not status.running
    started = spare.start()
    assert started.running and started.pid != 999999
    assert int(spare.pid_file.read_text()) == started.pid


def test_data_survives_a_kill_and_restart(spare: LocalBroker) -> None:
    from confluent_kafka import Producer

    spare.start()
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": spare.bootstrap})
    admin.create_topics([NewTopic("survivor", 1, 1)])["survivor"].result()
    p = Producer({"bootstrap.servers": spare.bootstrap, "acks": "all"})
    p.produce("survivor", b"kept")
    assert p.flush(30) == 0
    spare.kill()
    assert not spare.status().running
    spare.start()
    from confluent_kafka import Consumer

    c = Consumer(
        {"bootstrap.servers": spare.bootstrap, "group.id": "g", "auto.offset.reset": "earliest"}
    )
    c.subscribe(["survivor"])
    got = [m.value() for m in c.consume(10, timeout=15) if not m.error()]
    c.close()
    assert got == [b"kept"]


def test_cli_reports_status_and_log_location(spare: LocalBroker) -> None:
    spare.start()
    r = subprocess.run(
        [sys.executable, "-m", "streams.cli.main", "broker", "status", "--port", str(PORT)],
        capture_output=True,
        text=True,
        check=False,
        env={**_env(), "TOCSIN_BROKER_HOME": str(spare.home)},
    )
    assert r.returncode == 0, r.stderr
    assert "answers metadata" in r.stdout and "server.log" in r.stdout
    assert spare.log_file.exists() and spare.log_file.stat().st_size > 0, (
        "the broker's own log must not stay empty (slf4j binding)"
    )
    spare.stop()
    r = subprocess.run(
        [sys.executable, "-m", "streams.cli.main", "broker", "status", "--port", str(PORT)],
        capture_output=True,
        text=True,
        check=False,
        env={**_env(), "TOCSIN_BROKER_HOME": str(spare.home)},
    )
    assert r.returncode == 1 and "stopped" in r.stdout


def test_missing_java_fails_clearly(spare: LocalBroker, monkeypatch: pytest.MonkeyPatch) -> None:
    from schemas import BrokerError

    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.delenv("JAVA_HOME", raising=False)
    fresh = LocalBroker(home=spare.home / "nojava", port=PORT + 10)
    with pytest.raises(BrokerError, match="Java is not installed"):
        fresh.start()
    with pytest.raises(BrokerError, match="Maven"):
        fresh.ensure_jars()

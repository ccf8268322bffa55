"""The agents worker started while Kafka is away (a node restarted during an outage, a
rollout racing the broker's): it waits, live and not ready, and starts as soon as the
broker answers, or stops cleanly if told to first. faust alone gives up at once, and
the worker would crash-loop with restarts spaced further apart the longer it lasts."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from streams.catalog import Catalog
from streams.settings import KafkaSettings

ROOT = Path(__file__).resolve().parents[3]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def _forward(port: int, to: tuple[str, int]) -> Iterator[None]:
    """A TCP relay from `port` to the broker: the broker 'comes back' when it opens (the
    clients bootstrap through it, then reach the broker at its advertised address)."""
    server = socket.create_server(("127.0.0.1", port))
    server.settimeout(0.2)
    done = threading.Event()

    def pump(a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            a.close()
            b.close()

    def accept() -> None:
        while not done.is_set():
            try:
                client, _ = server.accept()
            except TimeoutError:
                continue
            upstream = socket.create_connection(to)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=pump, args=(a, b), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
        server.close()


def _ready(port: int) -> bool | None:
    """/readyz: True, False, or None while the health server is not up."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
            return bool(r.status == 200)
    except urllib.error.HTTPError:
        return False
    except OSError:
        return None


def _start(settings: KafkaSettings, bootstrap: str, health: int, tmp: Path,
           ) -> tuple[subprocess.Popen[bytes], Path]:  # fmt: skip
    env = {**os.environ, **settings.environment(), "TOCSIN_BOOTSTRAP_SERVERS": bootstrap,
           "TOCSIN_LOG_FORMAT": "json"}  # fmt: skip
    err = tmp / "agents.err"
    proc = subprocess.Popen(
        [sys.executable, "-m", "streams.cli.main", "run", "agents", "--config",
         str(ROOT / "examples" / "config"), "--health-port", str(health),
         "--datadir", str(tmp / "data")],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=err.open("wb"),
    )  # fmt: skip
    return proc, err


def _until(what: str, check: object, proc: subprocess.Popen[bytes], err: Path,
           deadline_s: float = 120) -> None:  # fmt: skip
    deadline = time.monotonic() + deadline_s
    while not check():  # type: ignore[operator]
        assert proc.poll() is None, f"exited {proc.returncode}: {err.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"{what}: {err.read_text()[-3000:]}"
        time.sleep(0.2)


def test_the_agents_wait_for_the_broker_and_start_when_it_answers(
    kafka_settings: KafkaSettings, topics: Catalog, tmp_path: Path
) -> None:
    away, health = _free_port(), _free_port()
    host, _, port = kafka_settings.bootstrap_servers.partition(":")
    proc, err = _start(kafka_settings, f"127.0.0.1:{away}", health, tmp_path)
    try:
        _until("waiting for the broker", lambda: b"kafka_waiting" in err.read_bytes(), proc, err)
        assert _ready(health) is False, "not ready while the broker is away"
        with _forward(away, (host, int(port))):
            _until("ready once the broker answers", lambda: _ready(health), proc, err, 180)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=60) == 0, err.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "Traceback" not in err.read_text()


def test_agents_told_to_stop_while_waiting_stop_cleanly(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    proc, err = _start(kafka_settings, f"127.0.0.1:{_free_port()}", _free_port(), tmp_path)
    try:
        _until("waiting for the broker", lambda: b"kafka_waiting" in err.read_bytes(), proc, err)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, err.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "stopped_before_start" in err.read_text()

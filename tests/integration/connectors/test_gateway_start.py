"""`tocsin run gateway` as an operator starts it: refused beyond loopback without
credentials, open on loopback for development, credentials from env and files (an
absent optional secret file is no crash), rate limits from the command line."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import orjson

from streams.catalog import Catalog
from streams.settings import KafkaSettings
from tests.integration.connectors.support import STAMP

CREDENTIAL_VARS = (
    "TOCSIN_GATEWAY_TOKENS",
    "TOCSIN_PAGERDUTY_INTAKE_KEYS",
    "SLACK_SIGNING_SECRET",
    "SLACK_APP_TOKEN",
    "SLACK_BOT_TOKEN",
    "TOCSIN_GATEWAY_INSECURE_NO_AUTH",
)
SAMPLE = orjson.dumps({"name": "cpu", "value": 1, "time": STAMP})
EVENT = {
    "routing_key": "anything-at-all",
    "event_action": "trigger",
    "payload": {"summary": "ATTACKER: disk full", "source": "x", "severity": "critical"},
}


def _env(settings: KafkaSettings, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not any(k.startswith(c) for c in CREDENTIAL_VARS)}
    env |= {
        "TOCSIN_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
        "TOCSIN_TOPIC_PREFIX": settings.topic_prefix,
        "TOCSIN_LOG_FORMAT": "json",
    }
    return env | extra


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "streams.cli.main", "run", "gateway", *args]


@contextmanager
def running(env: dict[str, str], *args: str, output: list[str] | None = None
            ) -> Iterator[httpx.Client]:  # fmt: skip
    """`tocsin run gateway` on a free port, once ready; what it printed goes to `output`."""
    port = _free_port()
    proc = subprocess.Popen(
        _cli("--host", "127.0.0.1", "--port", str(port), *args),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            deadline = time.monotonic() + 60
            while True:
                assert proc.poll() is None, proc.communicate()[0].decode()[-2000:]
                try:
                    if client.get("/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "the gateway never became ready"
                time.sleep(0.2)
            yield client
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        out = proc.communicate(timeout=30)[0].decode()
        if output is not None:
            output.append(out)


def test_beyond_loopback_without_credentials_the_gateway_refuses_to_start(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    env = _env(kafka_settings, TOCSIN_GATEWAY_TOKENS_FILE=str(tmp_path / "absent"))
    for host in ("0.0.0.0", "::"):
        done = subprocess.run(
            _cli("--host", host, "--port", str(_free_port())),
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode != 0
        for name in ("TOCSIN_GATEWAY_TOKENS", "TOCSIN_PAGERDUTY_INTAKE_KEYS", "--insecure-no-auth"):
            assert name in done.stderr, done.stderr[-2000:]


def test_on_loopback_without_credentials_it_is_open_for_development(
    kafka_settings: KafkaSettings, topics: Catalog
) -> None:
    with running(_env(kafka_settings)) as client:
        assert client.post("/v1/metrics", content=SAMPLE).status_code == 202
        assert client.post("/v2/enqueue", json=EVENT).status_code == 202


def test_credentials_from_files_with_an_absent_optional_key_and_a_rate_limit(
    kafka_settings: KafkaSettings, topics: Catalog, tmp_path: Path
) -> None:
    (tmp_path / "tokens").write_text("tok-1,tok-2\n")
    env = _env(
        kafka_settings,
        TOCSIN_GATEWAY_TOKENS_FILE=str(tmp_path / "tokens"),
        TOCSIN_PAGERDUTY_INTAKE_KEYS_FILE=str(tmp_path / "no-intake-keys"),
        SLACK_APP_TOKEN_FILE=str(tmp_path / "no-app-token"),
        SLACK_SIGNING_SECRET_FILE=str(tmp_path / "no-signing-secret"),
    )
    with running(env, "--rate-limit", "0.05", "--rate-burst", "3") as client:
        assert client.post("/v1/metrics", content=SAMPLE).status_code == 401
        assert client.post("/v2/enqueue", json=EVENT).status_code == 400
        auth = {"Authorization": "Bearer tok-2"}
        codes = [
            client.post("/v1/metrics", content=SAMPLE, headers=auth).status_code for _ in range(4)
        ]
        assert codes == [202, 202, 202, 429]
        assert client.post("/v2/enqueue", json={**EVENT, "routing_key": "tok-1"}).status_code == 202

"""The image runs every worker kind as its non-root user on a read-only root filesystem
against the local broker: each starts, becomes ready and does its job, from a metric
sample posted to the gateway to the Slack message the notifier delivers and the
incident the API lists from the PostgreSQL store the projector keeps, with the
Kubernetes Secret volumes mounted as they are when optional keys are left out."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from confluent_kafka.admin import NewTopic

from harness.postgres import LocalPostgres, binaries
from schemas import Alert, MetricSample, Notification, decode
from streams.api.auth import digest
from streams.catalog import Catalog
from streams.demo.fake_slack import FakeSlack, serve
from streams.kafka import make_admin, make_producer, read_topic
from streams.settings import KafkaSettings
from tests.container.podman import Containers, wait_for

pytestmark = [pytest.mark.container, pytest.mark.timeout(900)]

TOKEN = "container-test-token"
API_TOKEN = "tsn_container_test_api_token"
SECRETS = "/var/run/secrets/tocsin"
READY_S = 180.0  # two loaded cores start five Python workers at once
STAGE_S = 120.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def containers(image: str) -> Iterator[Containers]:
    running = Containers(image)
    try:
        yield running
    finally:
        running.stop_all()


@pytest.fixture
def postgres() -> Iterator[LocalPostgres]:
    """A throwaway PostgreSQL on the host's loopback (the containers share its network)."""
    if binaries() is None:
        pytest.skip("PostgreSQL is not installed: `make peers` installs `postgresql`")
    pg = LocalPostgres(_free_port()).start()
    yield pg
    pg.stop()


@pytest.fixture
def slack() -> Iterator[tuple[FakeSlack, str]]:
    fake = FakeSlack()
    with serve(fake.app()) as url:
        yield fake, url


def _secret_dir(path: Path, files: dict[str, str]) -> Path:
    """A directory as Kubernetes mounts a Secret: one file per key present (readable by
    the container's user, whatever uid it has)."""
    path.mkdir(mode=0o755)
    path.chmod(0o755)
    for key, value in files.items():
        (path / key).write_text(value)
        (path / key).chmod(0o644)
    return path


def _ready(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=3).status_code == 200
    except httpx.HTTPError:
        return False


def _records(settings: KafkaSettings, topic: str, model: Any, match: Callable[[Any], bool]
             ) -> list[Any]:  # fmt: skip
    return [r for r in (decode(model, v) for v in read_topic(settings, topic, 10)) if match(r)]


def test_every_worker_kind_starts_ready_and_processes_a_record(
    containers: Containers, broker: str, slack: tuple[FakeSlack, str], tmp_path: Path,
    postgres: LocalPostgres,
) -> None:  # fmt: skip
    prefix = f"c{uuid.uuid4().hex[:10]}."
    settings = KafkaSettings(bootstrap_servers=broker, topic_prefix=prefix, partitions=3)
    catalog = Catalog(settings)
    kafka = {"TOCSIN_BOOTSTRAP_SERVERS": broker, "TOCSIN_TOPIC_PREFIX": prefix,
             "TOCSIN_PARTITIONS": "3"}  # fmt: skip
    containers.run_once("topics", "create", env=kafka)
    admin = make_admin(settings)
    assert {t.name for t in catalog.resolved()} <= set(admin.list_topics(timeout=10).topics)
    influx_topic = f"{prefix}telegraf"
    admin.create_topics([NewTopic(influx_topic, 1, 1)])[influx_topic].result(30)

    # the gateway's Secret holds its tokens and an empty intake-keys file, the Slack
    # Secret is absent (an optional volume mounts empty): the *_FILE variables of the
    # manifests name files that do not exist. The token is in the environment as well,
    # which the gateway reads when it reads no file.
    gateway_secrets = _secret_dir(
        tmp_path / "gateway", {"tokens": TOKEN + "\n", "pagerduty-intake-keys": ""}
    )
    slack_secrets = _secret_dir(tmp_path / "slack", {})
    fake_slack, slack_url = slack
    # the projector and the API: the store's DSN from their Secret, the API's token in a
    # config file beside the example's, the console's key from its Secret
    store_secrets = _secret_dir(tmp_path / "store", {"dsn": postgres.new_database("c") + "\n"})
    console_secrets = _secret_dir(tmp_path / "console", {"secret": "c" * 40 + "\n"})
    tokens = _secret_dir(
        tmp_path / "tokens",
        {
            "tokens.yaml": (
                f"api_tokens:\n  - {{user: alice, role: viewer, sha256: {digest(API_TOKEN)}}}\n"
            )
        },
    )
    store_env = {"TOCSIN_STORE_DSN_FILE": f"{SECRETS}/store/dsn"}
    kinds = ("gateway", "processor", "agents", "notifier", "ingest", "projector", "api")
    ports = {kind: _free_port() for kind in kinds}
    workers: dict[str, tuple[list[str], dict[str, str], dict[Path, str]]] = {
        "gateway": (
            ["--host", "127.0.0.1", "--port", str(ports["gateway"]),
             "--config", "/app/examples/config"],
            {"TOCSIN_GATEWAY_TOKENS": TOKEN,
             "TOCSIN_GATEWAY_TOKENS_FILE": f"{SECRETS}/gateway/tokens",
             "TOCSIN_PAGERDUTY_INTAKE_KEYS_FILE": f"{SECRETS}/gateway/pagerduty-intake-keys",
             "SLACK_SIGNING_SECRET_FILE": f"{SECRETS}/slack/signing-secret",
             "SLACK_BOT_TOKEN_FILE": f"{SECRETS}/slack/bot-token",
             "SLACK_APP_TOKEN_FILE": f"{SECRETS}/slack/app-token"},
            {gateway_secrets: f"{SECRETS}/gateway", slack_secrets: f"{SECRETS}/slack"},
        ),
        "processor": (
            ["--rules", "/app/rules/default.yaml", "--instance-id", f"{prefix}processor-0"],
            {}, {},
        ),
        "agents": (["--config", "/app/examples/config", "--datadir", "/tmp/faust"], {}, {}),
        "notifier": (
            [],
            {"SLACK_BOT_TOKEN": "xoxb-container-test",
             "TOCSIN_SLACK_BASE_URL": f"{slack_url}/api/",
             "PAGERDUTY_ROUTING_KEYS_FILE": f"{SECRETS}/pagerduty/routing-keys"},
            {_secret_dir(tmp_path / "pagerduty", {}): f"{SECRETS}/pagerduty"},
        ),
        "ingest": (["--format", "influx", "--topic", influx_topic], {}, {}),
        "projector": ([], store_env, {store_secrets: f"{SECRETS}/store"}),
        "api": (
            ["--host", "127.0.0.1", "--port", str(ports["api"]),
             "--config", "/app/examples/config", "--config", "/etc/tocsin/tokens"],
            {**store_env, "TOCSIN_CONSOLE_SECRET_FILE": f"{SECRETS}/console/secret"},
            {store_secrets: f"{SECRETS}/store", console_secrets: f"{SECRETS}/console",
             tokens: "/etc/tocsin/tokens"},
        ),
    }  # fmt: skip
    for kind, (args, env, mounts) in workers.items():
        port = [] if kind in ("gateway", "api") else ["--health-port", str(ports[kind])]
        containers.start(kind, "run", kind, *args, *port, env={**kafka, **env}, mounts=mounts)

    try:
        for kind, port in ports.items():
            name = f"{containers.prefix}-{kind}"

            def ready_or_gone(name: str = name, port: int = port) -> bool:
                if not containers.running(name):
                    raise AssertionError(f"{name} exited")
                return _ready(port)

            wait_for(f"{kind} /readyz to answer 200", ready_or_gone, READY_S)

        gateway = f"{containers.prefix}-gateway"
        assert containers.exec(gateway, "id", "-u").stdout.strip() == "10001"
        written = containers.exec(gateway, "touch", "/app/written")
        assert written.returncode != 0 and "Read-only file system" in written.stderr

        # the gateway: a CPU series above the critical threshold for eight minutes
        host = f"h-{uuid.uuid4().hex[:8]}"
        now = datetime.now(UTC).replace(microsecond=0)
        samples = [
            {"name": "cpu_percent", "value": 97.0, "labels": {"host": host, "service": "checkout"},
             "time": (now - timedelta(seconds=15 * i)).isoformat().replace("+00:00", "Z")}
            for i in range(32, -1, -1)
        ]  # fmt: skip
        body = b"\n".join(orjson.dumps(s) for s in samples)
        url = f"http://127.0.0.1:{ports['gateway']}/v1/metrics"
        ndjson = {"Content-Type": "application/x-ndjson"}
        assert httpx.post(url, content=body, headers=ndjson, timeout=30).status_code == 401
        accepted = httpx.post(
            url, content=body, timeout=30, headers={**ndjson, "Authorization": f"Bearer {TOKEN}"}
        )
        assert accepted.status_code == 202, accepted.text
        assert accepted.json() == {"accepted": len(samples)}

        # the processor: the default rule pack's critical CPU rule fires for the series
        def fired() -> list[Alert]:
            return _records(
                settings,
                catalog.name("alerts"),
                Alert,
                lambda a: a.labels.get("host") == host and a.status == "firing",
            )

        wait_for("the processor's firing alert", fired, STAGE_S, interval=2)
        assert {a.rule for a in fired()} >= {"cpu_saturation_critical"}

        # the agents: an incident pages the payments team (checkout is theirs)
        def paged() -> list[Notification]:
            return _records(
                settings,
                catalog.name("notifications"),
                Notification,
                lambda n: n.labels.get("host") == host and n.kind == "trigger",
            )

        wait_for("the agents' trigger notification", paged, STAGE_S, interval=2)
        incident = paged()[0].incident_id

        # the notifier: Slack received the incident's message
        def posted() -> bool:
            return any(
                method == "chat.postMessage"
                and (args.get("metadata") or {}).get("event_payload", {}).get("incident_id")
                == incident
                for method, args in list(fake_slack.calls)
            )

        wait_for("the notifier's Slack message", posted, STAGE_S, interval=1)

        # the projector and the API: the incident is in the store, listed with a token
        api = f"http://127.0.0.1:{ports['api']}/api/v1/incidents"

        def listed() -> bool:
            r = httpx.get(api, headers={"Authorization": f"Bearer {API_TOKEN}"}, timeout=10)
            assert r.status_code == 200, r.text
            return incident in {i["incident_id"] for i in r.json()["items"]}

        assert httpx.get(api, timeout=10).status_code == 401
        wait_for("the incident listed by the API", listed, STAGE_S, interval=1)

        # the ingest worker: a Telegraf line on its topic becomes a sample on `metrics`
        producer = make_producer(settings)
        stamp = time.time_ns()
        producer.produce(influx_topic, f"containertest,host={host} value=1 {stamp}".encode())
        assert producer.flush(30) == 0

        def ingested() -> list[MetricSample]:
            return _records(
                settings,
                catalog.name("metrics"),
                MetricSample,
                lambda s: s.name == "containertest" and s.labels.get("host") == host,
            )

        wait_for("the ingest worker's sample", ingested, STAGE_S, interval=2)

        # SIGTERM reaches tocsin through tini: every worker leaves before the grace ends
        stopped = containers.stop(timeout_s=40)
        killed = {name: code for name, code in stopped.items() if code == 137}
        assert not killed, f"killed after the grace period: {killed}"
    except AssertionError as exc:
        logs = "\n".join(f"--- {n}\n{containers.logs(n)}" for n in containers.names)
        raise AssertionError(f"{exc}\n{logs}") from exc

"""What an attacker and a user see at the gateway on the real broker: every route needs
credentials, a refused request writes nothing to Kafka, a flooding credential gets 429
while another's requests go through, Slack answers only users the config knows."""

from __future__ import annotations

import concurrent.futures
import itertools
import threading
import time
import urllib.parse
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.slack.auth import StaticDirectory
from connectors.slack.signature import SignatureVerifier
from schemas import Alert, Incident, MetricSample, decode, encode
from streams.catalog import Catalog
from streams.gateway.app import Gateway, GatewayMetrics
from streams.gateway.limits import RateLimit
from streams.health import Health
from streams.kafka import make_producer
from streams.settings import KafkaSettings
from tests.integration.connectors.support import SIGNING, STAMP, read_values, serve

TOKEN, OTHER_TOKEN, INTAKE_KEY = "tok-alpha", "tok-beta", "R" * 32
WRITTEN = ("alerts", "metrics", "logs", "deadletter", "commands")
ATTACK = {
    "routing_key": "anything-at-all",
    "event_action": "trigger",
    "dedup_key": "attacker-1",
    "payload": {"summary": "ATTACKER: disk full", "source": "db-1", "severity": "critical"},
}


def gateway(
    settings: KafkaSettings, tokens: set[str], keys: frozenset[str] = frozenset(), **kwargs: object
) -> Gateway:
    directory = StaticDirectory.of(anywhere=["U_SRE"], payments=["U_CAROL"])
    return Gateway(
        settings,
        set(tokens),
        SignatureVerifier(SIGNING),
        None,
        Health(),
        GatewayMetrics(),
        directory=directory,
        pagerduty_keys=set(keys),
        **kwargs,
    )  # type: ignore[arg-type]


@pytest.fixture
def gw(kafka_settings: KafkaSettings, topics: Catalog) -> Iterator[httpx.Client]:
    app = gateway(kafka_settings, {TOKEN, OTHER_TOKEN}, {INTAKE_KEY}).app()
    with serve(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        yield client


def _sample(value: float) -> bytes:
    return orjson.dumps({"name": "cpu", "value": value, "time": STAMP})


def _nothing_written(settings: KafkaSettings, topics: Catalog) -> dict[str, int]:
    counts = {t: len(read_values(settings, topics.name(t))) for t in WRITTEN}
    return {t: n for t, n in counts.items() if n}


INTAKES = [
    ("/v1/metrics", _sample(1), {}),
    ("/v1/logs", orjson.dumps({"message": "x", "time": STAMP, "source": "a"}), {}),
    ("/v1/alertmanager", b'{"version": "4", "alerts": []}', {}),
    ("/api/v1/write", b"", {"Content-Encoding": "snappy"}),
]


def test_no_route_takes_a_request_without_the_right_credential(
    gw: httpx.Client, kafka_settings: KafkaSettings, topics: Catalog
) -> None:
    for path, body, headers in INTAKES:
        for auth in (
            {},
            {"Authorization": "Bearer wrong"},
            {"Authorization": f"Basic {TOKEN}"},
            {"Authorization": f"Bearer {INTAKE_KEY}"},
        ):
            resp = gw.post(path, content=body, headers={**headers, **auth})
            assert resp.status_code == 401, (path, auth, resp.text)
            assert resp.headers["WWW-Authenticate"] == "Bearer"
    for key in ("anything-at-all", INTAKE_KEY.lower(), "", None):
        event = {k: v for k, v in ATTACK.items() if k != "routing_key"}
        if key is not None:
            event["routing_key"] = key
        for auth in ({}, {"Authorization": "Bearer wrong"}):
            resp = gw.post("/v2/enqueue", json=event, headers=auth)
            assert resp.status_code == 400, (key, resp.text)
            assert resp.json() == {
                "status": "invalid event",
                "message": "Event object is invalid",
                "errors": ["Invalid routing key"],
            }
    for path in ("/slack/commands", "/slack/interactions"):
        assert gw.post(path, content=b"text=list&user_id=U_SRE").status_code == 401
    assert _nothing_written(kafka_settings, topics) == {}, "refused requests write nothing"
    metrics = gw.get("/metrics").text
    assert 'tocsin_gateway_auth_refused_total{code="401",route="metrics"} 4.0' in metrics
    assert 'tocsin_gateway_auth_refused_total{code="400",route="pagerduty"} 8.0' in metrics

    # the same requests with a credential do land
    ok = gw.post("/v1/metrics", content=_sample(1), headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 202
    assert gw.post("/v2/enqueue", json={**ATTACK, "routing_key": INTAKE_KEY}).status_code == 202
    assert _nothing_written(kafka_settings, topics) == {"metrics": 1, "alerts": 1}


def test_a_pagerduty_event_authenticates_by_intake_key_by_token_or_by_header(
    gw: httpx.Client, kafka_settings: KafkaSettings, topics: Catalog
) -> None:
    answers = [
        gw.post("/v2/enqueue", json={**ATTACK, "routing_key": INTAKE_KEY, "dedup_key": "k1"}),
        gw.post("/v2/enqueue", json={**ATTACK, "routing_key": OTHER_TOKEN, "dedup_key": "k2"}),
        gw.post(
            "/v2/enqueue",
            json={**ATTACK, "dedup_key": "k3"},
            headers={"Authorization": f"Bearer {TOKEN}"},
        ),
    ]
    assert [(a.status_code, a.json()["dedup_key"]) for a in answers] == [
        (202, "k1"),
        (202, "k2"),
        (202, "k3"),
    ]
    alerts = [decode(Alert, v) for v in read_values(kafka_settings, topics.name("alerts"))]
    assert sorted(a.fingerprint for a in alerts) == ["k1", "k2", "k3"]


def test_tokens_without_intake_keys_no_longer_let_any_routing_key_page_people(
    kafka_settings: KafkaSettings, topics: Catalog
) -> None:
    """The reproduced attack: a trigger then a resolve with a made-up routing key."""
    app = gateway(kafka_settings, {TOKEN}).app()
    with serve(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        trigger = client.post("/v2/enqueue", json=ATTACK)
        resolve = client.post("/v2/enqueue", json={**ATTACK, "event_action": "resolve"})
        assert (trigger.status_code, resolve.status_code) == (400, 400)
        assert trigger.json()["errors"] == ["Invalid routing key"]
        assert _nothing_written(kafka_settings, topics) == {}
        token_as_key = client.post("/v2/enqueue", json={**ATTACK, "routing_key": TOKEN})
        assert token_as_key.status_code == 202
    [alert] = [decode(Alert, v) for v in read_values(kafka_settings, topics.name("alerts"))]
    assert alert.fingerprint == "attacker-1"


def test_a_gateway_without_credentials_refuses_unless_explicitly_open(
    kafka_settings: KafkaSettings, topics: Catalog
) -> None:
    with (
        serve(gateway(kafka_settings, set()).app()) as url,
        httpx.Client(base_url=url, timeout=30) as client,
    ):
        metrics = client.post("/v1/metrics", content=_sample(1))
        assert metrics.status_code == 403 and "TOCSIN_GATEWAY_TOKENS" in metrics.json()["error"]
        assert client.post("/v2/enqueue", json=ATTACK).status_code == 400
        assert _nothing_written(kafka_settings, topics) == {}
    with (
        serve(gateway(kafka_settings, set(), insecure=True).app()) as url,
        httpx.Client(base_url=url, timeout=30) as client,
    ):
        assert client.post("/v1/metrics", content=_sample(1)).status_code == 202
        assert client.post("/v2/enqueue", json=ATTACK).status_code == 202
    assert _nothing_written(kafka_settings, topics) == {"metrics": 1, "alerts": 1}


def test_a_flooding_credential_gets_429_while_another_keeps_getting_through(
    kafka_settings: KafkaSettings, topics: Catalog
) -> None:
    limit = RateLimit(rate=5.0, burst=10)
    app = gateway(kafka_settings, {TOKEN, OTHER_TOKEN}, rate_limit=limit).app()
    flood_codes: list[int] = []
    retry_afters: list[int] = []
    quiet_codes: list[int] = []
    flooding = threading.Event()

    def flood(worker: int) -> None:
        with httpx.Client(base_url=url, timeout=30) as c:
            for i in range(25):
                r = c.post(
                    "/v1/metrics",
                    content=_sample(worker * 1000 + i),
                    headers={"Authorization": f"Bearer {TOKEN}"},
                )
                flood_codes.append(r.status_code)
                if r.status_code == 429:
                    flooding.set()
                    retry_afters.append(int(r.headers["Retry-After"]))

    with serve(app) as url:
        started = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            floods = [pool.submit(flood, w) for w in range(5)]
            assert flooding.wait(60), "the flood was never limited"
            with httpx.Client(base_url=url, timeout=30) as quiet:
                for i in range(8):  # within its own burst, during the flood
                    r = quiet.post(
                        "/v1/metrics",
                        content=_sample(-1 - i),
                        headers={"Authorization": f"Bearer {OTHER_TOKEN}"},
                    )
                    quiet_codes.append(r.status_code)
            for f in floods:
                f.result()
        elapsed = time.monotonic() - started
    assert quiet_codes == [202] * 8
    assert set(flood_codes) == {202, 429} and min(retry_afters) >= 1
    accepted = flood_codes.count(202)
    assert accepted <= limit.burst + limit.rate * elapsed + 1, (accepted, elapsed)
    stored = [
        decode(MetricSample, v).value for v in read_values(kafka_settings, topics.name("metrics"))
    ]
    assert len(stored) == accepted + 8, "a 429 wrote nothing, every 202 is in Kafka"


def test_pagerduty_throttles_per_routing_key_in_its_own_shape(
    kafka_settings: KafkaSettings, topics: Catalog
) -> None:
    app = gateway(kafka_settings, {TOKEN}, {INTAKE_KEY}, rate_limit=RateLimit(0.05, 2)).app()
    with serve(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        codes = [
            client.post("/v2/enqueue", json={**ATTACK, "routing_key": INTAKE_KEY}).status_code
            for _ in range(3)
        ]
        throttled = client.post("/v2/enqueue", json={**ATTACK, "routing_key": INTAKE_KEY})
        other = client.post("/v2/enqueue", json={**ATTACK, "routing_key": TOKEN})
    assert codes == [202, 202, 429]
    assert throttled.status_code == 429 and throttled.json()["status"] == "throttle event"
    assert int(throttled.headers["Retry-After"]) >= 1
    assert other.status_code == 202


_TRIGGERS = (f"t{i}" for i in itertools.count())


def _signed(body: bytes, stamp: str | None = None) -> dict[str, str]:
    stamp = stamp or str(int(time.time()))
    return {
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": SignatureVerifier(SIGNING).sign(stamp, body),
        "Content-Type": "application/x-www-form-urlencoded",
    }


def _slash(client: httpx.Client, text: str, user: str) -> httpx.Response:
    # Slack's trigger_id differs per request; without it a repeat would be a replay
    trigger = next(_TRIGGERS)
    body = urllib.parse.urlencode({"text": text, "user_id": user, "trigger_id": trigger}).encode()
    return client.post("/slack/commands", content=body, headers=_signed(body))


def test_slack_answers_only_users_the_config_knows(
    gw: httpx.Client, kafka_settings: KafkaSettings, topics: Catalog
) -> None:
    incident = Incident(
        incident_id="inc-acme-1",
        group_key="g",
        version=1,
        status="triggered",
        title="Checkout down for ACME Corp",
        severity="critical",
        priority="P1",
        team="payments",
        assignee="carol",
        opened_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    producer = make_producer(kafka_settings)
    producer.produce(topics.name("incidents"), key=b"inc-acme-1", value=encode(incident))
    assert producer.flush(10) == 0
    deadline = time.monotonic() + 30
    while "inc-acme-1" not in _slash(gw, "list", "U_SRE").json()["text"]:
        assert time.monotonic() < deadline, "the gateway never saw the incident"
        time.sleep(0.2)

    for text in ("list", "who", "who inc-acme-1", "ack inc-acme-1", "snooze 1h inc-acme-1"):
        resp = _slash(gw, text, "U_MALLORY")
        assert resp.status_code == 200 and resp.json()["response_type"] == "ephemeral"
        answer = resp.json()["text"]
        assert "not authorised" in answer, text
        assert "ACME" not in answer and "carol" not in answer and "P1" not in answer, text
    assert read_values(kafka_settings, topics.name("commands")) == []
    assert "carol" in _slash(gw, "who inc-acme-1", "U_CAROL").json()["text"]


def test_slack_mistakes_are_answered_never_a_server_error(
    gw: httpx.Client, kafka_settings: KafkaSettings, topics: Catalog
) -> None:
    body = urllib.parse.urlencode({"text": "list", "user_id": "U_SRE"}).encode()
    nines = gw.post("/slack/commands", content=body, headers=_signed(body, "9" * 400))
    assert nines.status_code == 401 and "Unix seconds" in nines.json()["error"]
    snooze = _slash(gw, "snooze 99999999999d inc-acme-1", "U_SRE")
    assert snooze.status_code == 200 and snooze.json()["response_type"] == "ephemeral"
    assert "maximum of 30d" in snooze.json()["text"]
    assert read_values(kafka_settings, topics.name("commands")) == []


@pytest.fixture(scope="module")
def slack_gateway(broker: str) -> Iterator[httpx.Client]:
    import uuid

    from streams.admin import create_topics
    from streams.kafka import make_admin

    s = KafkaSettings(bootstrap_servers=broker, topic_prefix=f"sa{uuid.uuid4().hex[:8]}.")
    create_topics(make_admin(s), Catalog(s))
    with serve(gateway(s, {TOKEN}).app()) as url, httpx.Client(base_url=url, timeout=30) as c:
        yield c


# what an HTTP client can send as a header value: printable, no surrounding blanks
header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60).filter(
    lambda t: t == t.strip()
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    stamp=st.one_of(header_text, st.integers(0, 10**500).map(str)),
    signed=st.booleans(),
    text=st.sampled_from(["list", "who", "snooze 99999999999d inc-1", "snooze 1e400s inc-1"]),
)
def test_any_slack_timestamp_or_signature_is_answered_never_a_server_error(
    slack_gateway: httpx.Client, stamp: str, signed: bool, text: str
) -> None:
    body = urllib.parse.urlencode({"text": text, "user_id": "U_SRE", "x": stamp}).encode()
    signature = SignatureVerifier(SIGNING).sign(stamp, body) if signed else "v0=" + "0" * 64
    headers = {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": signature,
               "Content-Type": "application/x-www-form-urlencoded"}  # fmt: skip
    resp = slack_gateway.post("/slack/commands", content=body, headers=headers)
    assert resp.status_code in (200, 401), (resp.status_code, resp.text[:300])
    if resp.status_code == 200:
        assert resp.json()["response_type"] == "ephemeral"

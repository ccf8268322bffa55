"""/v1/heartbeats/{name} on the real broker: a ping is in Kafka before the 200, a name
the config does not list is a 404 and a dead letter, a bad name or a big body a 4xx
naming it; a bounded Hypothesis fuzz of names and bodies never answers a 5xx."""

from __future__ import annotations

import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.slack.signature import SignatureVerifier
from schemas import DeadLetter, decode
from schemas.config import Config, load_config
from schemas.heartbeats import HeartbeatPing
from streams.admin import create_topics, delete_prefixed
from streams.catalog import Catalog
from streams.gateway.app import Gateway, GatewayMetrics
from streams.health import Health
from streams.kafka import make_admin
from streams.settings import KafkaSettings
from tests.integration.connectors.support import AUTH, SIGNING, TOKEN, read_keyed, serve


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Config:
    path = tmp_path_factory.mktemp("hb") / "heartbeats.yaml"
    path.write_text(yaml.safe_dump({"heartbeats": [
        {"name": "nightly-backup", "interval": "1d", "grace": "1h"}]}))  # fmt: skip
    return load_config([path])


def _serve(settings: KafkaSettings, cfg: Config) -> Iterator[httpx.Client]:
    gw = Gateway(settings, {TOKEN}, SignatureVerifier(SIGNING), cfg, Health(), GatewayMetrics())
    with serve(gw.app()) as url, httpx.Client(base_url=url, timeout=30) as client:
        yield client


@pytest.fixture
def gw(kafka_settings: KafkaSettings, topics: Catalog, config: Config) -> Iterator[httpx.Client]:
    yield from _serve(kafka_settings, config)


def test_a_ping_is_in_kafka_when_it_is_answered(
    gw: httpx.Client, kafka_settings: KafkaSettings, topics: Catalog
) -> None:
    got = gw.get("/v1/heartbeats/nightly-backup", headers=AUTH)
    assert got.status_code == 200, got.text
    assert got.json()["missed_after_s"] == 25 * 3600
    posted = gw.post("/v1/heartbeats/nightly-backup", headers=AUTH,
                     content=b"backup done: 42 GB in 13m\n")  # fmt: skip
    assert posted.status_code == 200
    stored = read_keyed(kafka_settings, topics.name("heartbeats"))
    pings = [decode(HeartbeatPing, v) for _, v in stored]
    assert [p.name for p in pings] == ["nightly-backup"] * 2
    assert {k for k, _ in stored} == {b"default/nightly-backup"}
    assert pings[1].message == "backup done: 42 GB in 13m" and pings[1].via == "http"


def test_refusals_name_the_problem_and_go_to_deadletter(
    gw: httpx.Client, kafka_settings: KafkaSettings, topics: Catalog
) -> None:
    assert gw.get("/v1/heartbeats/nightly-backup").status_code == 401, "bearer token required"
    unknown = gw.get("/v1/heartbeats/nightly-bakup", headers=AUTH)
    assert unknown.status_code == 404
    assert "heartbeats.name: 'nightly-bakup' is not a heartbeat of the config" in unknown.text
    bad = gw.post("/v1/heartbeats/Nightly%20Backup", headers=AUTH)
    assert bad.status_code == 400 and "heartbeats.name" in bad.text
    big = gw.post("/v1/heartbeats/nightly-backup", headers=AUTH, content=b"x" * 5000)
    assert big.status_code == 413 and "body" in big.text
    letters = [decode(DeadLetter, v) for _, v in read_keyed(kafka_settings,
                                                            topics.name("deadletter"))]  # fmt: skip
    assert sorted(bytes(letter.value).split(b"\n")[0] for letter in letters) == [
        b"GET /v1/heartbeats/nightly-bakup", b"POST /v1/heartbeats/Nightly%20Backup",
        b"POST /v1/heartbeats/nightly-backup"]  # fmt: skip
    assert read_keyed(kafka_settings, topics.name("heartbeats")) == []


@pytest.fixture(scope="module")
def fuzz_gateway(broker: str, config: Config) -> Iterator[httpx.Client]:
    s = KafkaSettings(bootstrap_servers=broker, topic_prefix=f"hb{uuid.uuid4().hex[:8]}.",
                      partitions=1)  # fmt: skip
    create_topics(make_admin(s), Catalog(s))
    yield from _serve(s, config)
    delete_prefixed(make_admin(s), s.topic_prefix)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(name=st.one_of(st.just("nightly-backup"), st.text(min_size=1, max_size=100)),
       body=st.binary(max_size=2048), method=st.sampled_from(["GET", "POST"]),
       encoding=st.sampled_from([None, "gzip", "br", "identity"]))  # fmt: skip
def test_fuzz_names_and_bodies_never_answer_a_server_error(
    fuzz_gateway: httpx.Client, name: str, body: bytes, method: str, encoding: str | None
) -> None:
    headers = dict(AUTH) | ({"Content-Encoding": encoding} if encoding else {})
    path = "/v1/heartbeats/" + urllib.parse.quote(name, safe="")
    resp = fuzz_gateway.request(method, path, headers=headers,
                                content=body if method == "POST" else None)  # fmt: skip
    assert resp.status_code < 500, (name, resp.text[:300])


def test_the_example_config_declares_heartbeats_the_check_accepts() -> None:
    cfg = load_config([Path("examples/config")])
    assert cfg.heartbeat("nightly-backup") is not None
    assert cfg.heartbeat("prometheus-watchdog") is not None

"""/v1/zabbix and /v1/checkmk on the real gateway and broker: each intake's own token
opens that intake only, a mistake is a 4xx naming the field with one dead letter, and
Hypothesis-generated bodies, near-valid or not, never get a 5xx."""

from __future__ import annotations

import gzip
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.sources.checkmk import example_payload as checkmk_example
from connectors.sources.zabbix import example_payload as zabbix_example
from schemas import Alert, DeadLetter, decode
from streams.admin import create_topics, delete_prefixed
from streams.catalog import Catalog
from streams.gateway.app import Gateway, GatewayMetrics
from streams.health import Health
from streams.kafka import make_admin
from streams.settings import KafkaSettings
from tests.integration.connectors.support import TOKEN, make_gateway, read_values, serve
from tests.integration.connectors.test_gateway_start import _env, running

ZABBIX, CHECKMK = "zbx-token", "cmk-token"
SOURCES = {"zabbix": frozenset({ZABBIX}), "checkmk": frozenset({CHECKMK})}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def module_settings(broker: str) -> Iterator[KafkaSettings]:
    s = KafkaSettings(bootstrap_servers=broker, topic_prefix=f"m{uuid.uuid4().hex[:8]}.",
                      partitions=1)  # fmt: skip
    create_topics(make_admin(s), Catalog(s))
    yield s
    delete_prefixed(make_admin(s), s.topic_prefix)


@pytest.fixture(scope="module")
def client(module_settings: KafkaSettings) -> Iterator[httpx.Client]:
    gw = make_gateway(module_settings, source_tokens=SOURCES)
    with serve(gw.app()) as url, httpx.Client(base_url=url, timeout=60) as c:
        yield c


def test_each_intake_takes_its_own_token_and_no_other(
    kafka_settings: KafkaSettings, topics: Catalog
) -> None:
    gw = make_gateway(kafka_settings, source_tokens=SOURCES)
    with serve(gw.app()) as url, httpx.Client(base_url=url, timeout=30) as c:
        zabbix, checkmk = zabbix_example(), checkmk_example()
        assert c.post("/v1/zabbix", content=zabbix, headers=bearer(ZABBIX)).status_code == 200
        assert c.post("/v1/checkmk", content=checkmk, headers=bearer(CHECKMK)).status_code == 200
        assert c.post("/v1/zabbix", content=zabbix, headers=bearer(TOKEN)).status_code == 200
        refused = [c.post("/v1/zabbix", content=zabbix, headers=bearer(CHECKMK)),
                   c.post("/v1/checkmk", content=checkmk, headers=bearer(ZABBIX)),
                   c.post("/v1/zabbix", content=zabbix),
                   c.post("/v1/metrics", content=b"[]", headers=bearer(ZABBIX))]  # fmt: skip
    assert [r.status_code for r in refused] == [401] * 4
    stored = [decode(Alert, v) for v in read_values(kafka_settings, topics.name("alerts"))]
    # the two Zabbix posts are one event (same content, same id); Checkmk's bulk is two
    assert sorted(a.source for a in stored) == ["checkmk", "checkmk", "zabbix", "zabbix"]
    assert len({a.event_id for a in stored if a.source == "zabbix"}) == 1
    assert read_values(kafka_settings, topics.name("deadletter")) == []


def test_an_intake_with_its_own_tokens_is_never_open(
    kafka_settings: KafkaSettings, topics: Catalog
) -> None:
    gw = Gateway(kafka_settings, set(), None, None, Health(), GatewayMetrics(), insecure=True,
                 source_tokens={"zabbix": SOURCES["zabbix"]})  # fmt: skip
    with serve(gw.app()) as url, httpx.Client(base_url=url, timeout=30) as c:
        assert c.post("/v1/zabbix", content=zabbix_example()).status_code == 401
        assert c.post("/v1/zabbix", content=zabbix_example(),
                      headers=bearer(ZABBIX)).status_code == 200  # fmt: skip
        # Checkmk's tokens are not configured: the open gateway lets it in
        assert c.post("/v1/checkmk", content=checkmk_example()).status_code == 200


def test_a_zabbix_mistake_is_named_and_dead_lettered_once(
    kafka_settings: KafkaSettings, topics: Catalog
) -> None:
    doc = orjson.loads(zabbix_example())
    del doc["event"]["id"]
    gw = make_gateway(kafka_settings, source_tokens=SOURCES)
    with serve(gw.app()) as url:
        answer = httpx.post(f"{url}/v1/zabbix", content=orjson.dumps(doc),
                            headers=bearer(ZABBIX), timeout=30)  # fmt: skip
        internal = dict(doc, event=dict(doc["event"], id="5", source="3"))
        unmapped = httpx.post(f"{url}/v1/zabbix", content=orjson.dumps(internal),
                              headers=bearer(ZABBIX), timeout=30)  # fmt: skip
    assert answer.status_code == 400 and "ZabbixEvent.event.id" in answer.json()["error"]
    assert unmapped.status_code == 400 and "event.source" in unmapped.json()["error"]
    letters = [decode(DeadLetter, v) for v in read_values(kafka_settings,
                                                          topics.name("deadletter"))]  # fmt: skip
    # the letters are keyed, so they may sit on different partitions: order is not theirs
    assert sorted((d.source_topic, d.reason) for d in letters) == [
        ("http:/v1/zabbix", "unmapped"), ("http:/v1/zabbix", "validation")]  # fmt: skip
    assert read_values(kafka_settings, topics.name("alerts")) == []


# -- fuzz: what comes back is never a 5xx --------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                max_size=4),
    max_leaves=12,
)  # fmt: skip


# built with the standard library's json: integers beyond 64 bits are valid JSON
def _mutate(doc: Any, path: list[str | int], value: Any) -> Any:
    """``doc`` with the node at ``path`` (as far as it exists) replaced by ``value``."""
    if not path or not isinstance(doc, dict | list):
        return value
    key, rest = path[0], path[1:]
    if isinstance(doc, dict) and isinstance(key, str) and key in doc:
        return {**doc, key: _mutate(doc[key], rest, value)}
    if isinstance(doc, list) and isinstance(key, int) and doc:
        i = key % len(doc)
        return [*doc[:i], _mutate(doc[i], rest, value), *doc[i + 1 :]]
    return value


ZABBIX_PATHS = [["event", "id"], ["event", "value"], ["event", "time"], ["event", "tags"],
                ["event", "tags", 0, "tag"], ["event", "nseverity"], ["event", "name"],
                ["host"], ["trigger", "url"], ["instance"], ["event"], []]  # fmt: skip
CHECKMK_PATHS = [["notifications"], ["notifications", 0], ["notifications", 0, "WHAT"],
                 ["notifications", 1, "HOSTSTATE"], ["notifications", 0, "MICROTIME"],
                 ["notifications", 0, "HOSTLABEL_team"], ["version"], []]  # fmt: skip
FUZZ = settings(max_examples=120, deadline=None, derandomize=False,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])  # fmt: skip


def _never_5xx(client: httpx.Client, path: str, body: bytes, token: str,
               gzip_it: bool = False) -> None:  # fmt: skip
    headers = bearer(token)
    if gzip_it:
        body, headers = gzip.compress(body), headers | {"Content-Encoding": "gzip"}
    answer = client.post(path, content=body, headers=headers)
    assert answer.status_code < 500, f"{path}: {answer.status_code} {answer.text[:300]}"
    assert answer.status_code in (200, 400, 413), answer.text[:300]


@FUZZ
@given(path=st.sampled_from(ZABBIX_PATHS), value=JSON, gzip_it=st.booleans())
def test_near_valid_zabbix_messages_never_answer_5xx(client: httpx.Client,
                                                     path: list[str | int], value: Any,
                                                     gzip_it: bool) -> None:  # fmt: skip
    doc = _mutate(orjson.loads(zabbix_example()), path, value)
    _never_5xx(client, "/v1/zabbix", json.dumps(doc).encode(), ZABBIX, gzip_it)


@FUZZ
@given(path=st.sampled_from(CHECKMK_PATHS), value=JSON, gzip_it=st.booleans())
def test_near_valid_checkmk_bulks_never_answer_5xx(client: httpx.Client,
                                                   path: list[str | int], value: Any,
                                                   gzip_it: bool) -> None:  # fmt: skip
    doc = _mutate(orjson.loads(checkmk_example()), path, value)
    _never_5xx(client, "/v1/checkmk", json.dumps(doc).encode(), CHECKMK, gzip_it)


@FUZZ
@given(body=st.binary(max_size=2048), route=st.sampled_from(["/v1/zabbix", "/v1/checkmk"]))
def test_arbitrary_bytes_never_answer_5xx(client: httpx.Client, body: bytes, route: str) -> None:
    _never_5xx(client, route, body, ZABBIX if route == "/v1/zabbix" else CHECKMK)


def test_oversized_and_deeply_nested_bodies_are_client_errors(client: httpx.Client) -> None:
    big = b'{"event": {"id": "1", "value": "1", "name": "' + b"x" * (300 * 1024) + b'"}}'
    assert client.post("/v1/zabbix", content=big, headers=bearer(ZABBIX)).status_code == 413
    deep = b'{"notifications": [' + b"[" * 5000 + b"]" * 5000 + b"]}"
    answer = client.post("/v1/checkmk", content=deep, headers=bearer(CHECKMK))
    assert answer.status_code == 400
    bomb = gzip.compress(b" " * (20 * 1024 * 1024))
    answer = client.post("/v1/checkmk", content=bomb,
                         headers=bearer(CHECKMK) | {"Content-Encoding": "gzip"})  # fmt: skip
    assert answer.status_code == 413


def test_the_cli_reads_an_intakes_own_tokens_and_keeps_the_other_intakes_closed(
    kafka_settings: KafkaSettings, topics: Catalog, tmp_path: Path
) -> None:
    secret = tmp_path / "zabbix-tokens"
    secret.write_text(f"{ZABBIX}\n")
    env = _env(kafka_settings, TOCSIN_ZABBIX_TOKENS_FILE=str(secret))
    with running(env) as c:
        assert c.post("/v1/zabbix", content=zabbix_example(),
                      headers=bearer(ZABBIX)).status_code == 200  # fmt: skip
        assert c.post("/v1/zabbix", content=zabbix_example()).status_code == 401
        assert c.post("/v1/checkmk", content=checkmk_example(),
                      headers=bearer(ZABBIX)).status_code == 403  # fmt: skip
        assert c.post("/v1/metrics", content=b"[]", headers=bearer(ZABBIX)).status_code == 403

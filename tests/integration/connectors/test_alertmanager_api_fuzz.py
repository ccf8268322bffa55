"""Hypothesis against the Alertmanager API and Grafana intakes of a gateway on the real
broker: arbitrary JSON, near-valid alerts and silences with fields of the wrong type,
size or syntax, raw bytes, hostile query strings and ids. A caller's mistake is always a
4xx; nothing answers 5xx, and the gateway stays healthy."""

from __future__ import annotations

import json
import os
import urllib.parse
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.sources.grafana import example_payload
from streams.admin import create_topics, delete_prefixed
from streams.catalog import Catalog
from streams.kafka import make_admin
from streams.settings import KafkaSettings
from tests.integration.connectors.support import AUTH, make_gateway, serve

EXAMPLES = int(os.environ.get("TOCSIN_FUZZ_EXAMPLES", "120"))
SLOW_IS_FINE = [HealthCheck.too_slow, HealthCheck.data_too_large]
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=SLOW_IS_FINE)
NOW = datetime.now(UTC)

scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70),
                    st.floats(allow_nan=False), st.text(max_size=40),
                    st.sampled_from(["0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "1e400",
                                     "2026-13-45T99:99:99Z", NOW.isoformat(), ""]))  # fmt: skip
json_values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=12), inner, max_size=5)),
    max_leaves=20)  # fmt: skip
labels = st.one_of(st.dictionaries(st.text(max_size=20), st.text(max_size=30), max_size=6),
                   json_values)  # fmt: skip


def _dumps(value: object) -> bytes:
    """JSON as any client may write it: integers beyond 64 bits included."""
    return json.dumps(value).encode()


@pytest.fixture(scope="module")
def client(broker: str) -> Iterator[httpx.Client]:
    s = KafkaSettings(bootstrap_servers=broker, topic_prefix=f"f{uuid.uuid4().hex[:8]}.",
                      partitions=1)  # fmt: skip
    create_topics(make_admin(s), Catalog(s))
    with serve(make_gateway(s).app()) as url, httpx.Client(base_url=url, timeout=60,
                                                           headers=AUTH) as c:  # fmt: skip
        yield c
        assert c.get("/healthz").status_code == 200
    delete_prefixed(make_admin(s), s.topic_prefix)


def _no_server_error(resp: httpx.Response, what: object) -> None:
    assert resp.status_code < 500, f"{resp.status_code} {resp.text[:300]} for {what!r:.300}"


@st.composite
def posted_alerts(draw: st.DrawFn) -> bytes:
    alerts: list[Any] = []
    for _ in range(draw(st.integers(0, 4))):
        alert: dict[str, Any] = {"labels": draw(labels)}
        for key in ("annotations", "startsAt", "endsAt", "generatorURL"):
            if draw(st.booleans()):
                alert[key] = draw(json_values)
        alerts.append(alert if draw(st.integers(0, 9)) else draw(json_values))
    return _dumps(alerts if draw(st.integers(0, 9)) else draw(json_values))


@st.composite
def posted_silences(draw: st.DrawFn) -> bytes:
    matcher = st.fixed_dictionaries({"name": st.one_of(st.text(max_size=10), json_values),
                                     "value": st.one_of(st.text(max_size=20), json_values),
                                     "isRegex": st.one_of(st.booleans(), json_values)})  # fmt: skip
    doc: dict[str, Any] = {
        "matchers": draw(st.one_of(st.lists(matcher, max_size=40), json_values)),
        "startsAt": draw(st.one_of(st.just(NOW.isoformat()), json_values)),
        "endsAt": draw(st.one_of(st.just((NOW + timedelta(hours=1)).isoformat()), json_values)),
        "createdBy": draw(st.one_of(st.text(max_size=300), json_values)),
        "comment": draw(st.one_of(st.text(max_size=50), json_values)),
    }
    if draw(st.booleans()):
        doc["id"] = draw(json_values)
    return _dumps(doc)


@st.composite
def grafana(draw: st.DrawFn) -> bytes:
    doc = orjson.loads(example_payload(draw(st.sampled_from(["firing", "resolved"]))))
    alert = doc["alerts"][0]
    for key in draw(st.lists(st.sampled_from(sorted(alert)), max_size=4)):
        alert[key] = draw(json_values)
    for key in draw(st.lists(st.sampled_from(["version", "orgId", "alerts", "title"]), max_size=2)):
        doc[key] = draw(json_values)
    return _dumps(doc)


bodies = st.one_of(st.binary(max_size=300), json_values.map(lambda v: _dumps(v)))


@FUZZ
@given(body=st.one_of(posted_alerts(), bodies))
def test_posted_alerts_never_answer_a_server_error(client: httpx.Client, body: bytes) -> None:
    _no_server_error(client.post("/api/v2/alerts", content=body), body)


@FUZZ
@given(body=st.one_of(posted_silences(), bodies))
def test_posted_silences_never_answer_a_server_error(client: httpx.Client, body: bytes) -> None:
    _no_server_error(client.post("/api/v2/silences", content=body), body)


@FUZZ
@given(body=st.one_of(grafana(), bodies))
def test_grafana_notifications_never_answer_a_server_error(client: httpx.Client,
                                                           body: bytes) -> None:  # fmt: skip
    _no_server_error(client.post("/v1/grafana", content=body), body)


@FUZZ
@given(query=st.lists(st.tuples(st.sampled_from(["filter", "active", "silenced", "inhibited",
                                                 "expired", "pending", "receiver"]),
                                st.text(max_size=30)), max_size=4),
       ident=st.text(min_size=1, max_size=40))  # fmt: skip
def test_queries_and_ids_never_answer_a_server_error(client: httpx.Client,
                                                     query: list[tuple[str, str]],
                                                     ident: str) -> None:  # fmt: skip
    for path in ("/api/v2/alerts", "/api/v2/alerts/groups", "/api/v2/silences"):
        _no_server_error(client.get(path, params=query), (path, query))
    quoted = f"/api/v2/silence/{urllib.parse.quote(ident, safe='')}"
    _no_server_error(client.get(quoted), ident)
    _no_server_error(client.delete(quoted), ident)

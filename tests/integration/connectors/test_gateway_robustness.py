"""Garbage never yields a 5xx or a crash; an unreachable broker yields 429, not a queue
that grows without bound; concurrent clients' acknowledged records are all in Kafka."""

from __future__ import annotations

import concurrent.futures
import socket
import time
from collections.abc import Iterator

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.slack.signature import SignatureVerifier
from schemas import MetricSample, decode
from streams.catalog import Catalog
from streams.settings import KafkaSettings
from tests.integration.connectors.support import (
    AUTH,
    SIGNING,
    STAMP,
    make_gateway,
    read_values,
    serve,
)

PATHS = [
    "/v1/metrics",
    "/v1/logs",
    "/v1/alertmanager",
    "/v2/enqueue",
    "/api/v1/write",
    "/slack/interactions",
    "/slack/commands",
]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.floats()
    | st.integers(-(2**63), 2**63 - 1)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "name",
                    "value",
                    "time",
                    "labels",
                    "alerts",
                    "version",
                    "payload",
                    "routing_key",
                    "event_action",
                    "startsAt",
                    "status",
                    "type",
                    "actions",
                    "user",
                    "http_status",
                    "samples",
                ]
            )
            | st.text(max_size=8),
            inner,
            max_size=6,
        )
    ),
    max_leaves=20,
)
bodies = st.one_of(
    st.binary(max_size=600),
    json_values.map(lambda v: orjson.dumps(v, option=orjson.OPT_SERIALIZE_NUMPY) if True else b""),
    st.lists(json_values, max_size=5).map(lambda vs: b"\n".join(orjson.dumps(v) for v in vs)),
)


@pytest.fixture(scope="module")
def fuzz_gateway(broker: str) -> Iterator[httpx.Client]:
    import uuid

    from streams.admin import create_topics
    from streams.kafka import make_admin

    s = KafkaSettings(
        bootstrap_servers=broker, topic_prefix=f"f{uuid.uuid4().hex[:8]}.", partitions=1
    )
    create_topics(make_admin(s), Catalog(s))
    with serve(make_gateway(s).app()) as url, httpx.Client(base_url=url, timeout=30) as c:
        yield c


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    path=st.sampled_from(PATHS),
    body=bodies,
    encoding=st.sampled_from([None, "gzip", "deflate", "snappy", "br", "identity"]),
    ctype=st.sampled_from(
        [
            "application/json",
            "application/x-ndjson",
            "text/plain",
            "application/x-www-form-urlencoded",
            "application/x-protobuf",
        ]
    ),
    signed=st.booleans(),
)
def test_garbage_never_yields_a_server_error(
    fuzz_gateway: httpx.Client,
    path: str,
    body: bytes,
    encoding: str | None,
    ctype: str,
    signed: bool,
) -> None:
    headers = {**AUTH, "Content-Type": ctype, "Connection": "close"}
    if encoding:
        headers["Content-Encoding"] = encoding
    if signed:
        ts = str(int(time.time()))
        headers["X-Slack-Request-Timestamp"] = ts
        headers["X-Slack-Signature"] = SignatureVerifier(SIGNING).sign(ts, body)
    resp = fuzz_gateway.post(path, content=body, headers=headers)
    assert resp.status_code < 500, (resp.status_code, resp.text[:300])
    assert fuzz_gateway.get("/healthz", headers={"Connection": "close"}).status_code == 200


def _unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_broker_answers_429_with_retry_after() -> None:
    settings_ = KafkaSettings(bootstrap_servers=f"127.0.0.1:{_unused_port()}", topic_prefix="down.")
    body = orjson.dumps({"name": "cpu", "value": 1, "time": STAMP})
    gateway = make_gateway(settings_, ack_timeout=2.0)
    with serve(gateway.app()) as url, httpx.Client(base_url=url, timeout=30) as client:
        codes = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            resp = client.post("/v1/metrics", content=body, headers=AUTH)
            codes.append(resp.status_code)
            if resp.status_code == 429:
                break
        assert resp.status_code == 429 and int(resp.headers["Retry-After"]) >= 1
        assert set(codes) <= {429, 503}, "never a 2xx for a write Kafka did not take"
        assert client.get("/readyz").status_code == 503


def test_concurrent_clients_every_acknowledged_record_is_in_kafka(
    kafka_settings: KafkaSettings, topics: Catalog
) -> None:
    def batch(client_id: int) -> tuple[int, list[float]]:
        values = [client_id * 1000.0 + i for i in range(50)]
        lines = b"\n".join(
            orjson.dumps(
                {
                    "name": "load",
                    "value": v,
                    "time": STAMP,
                    "labels": {"client": str(client_id)},
                }
            )
            for v in values
        )
        with httpx.Client(base_url=url, timeout=30) as c:
            r = c.post(
                "/v1/metrics",
                content=lines,
                headers={**AUTH, "Content-Type": "application/x-ndjson"},
            )
        return r.status_code, values

    with (
        serve(make_gateway(kafka_settings).app()) as url,
        concurrent.futures.ThreadPoolExecutor(8) as pool,
    ):
        results = list(pool.map(batch, range(24)))
    acknowledged = sorted(v for code, vs in results if code == 202 for v in vs)
    assert len(acknowledged) == 24 * 50
    stored = sorted(
        decode(MetricSample, v).value for v in read_values(kafka_settings, topics.name("metrics"))
    )
    assert stored == acknowledged

"""Garbage never yields a 5xx or a crash; an unreachable broker yields 429, not a queue
that grows without bound; concurrent clients' acknowledged records are all in Kafka."""

from __future__ import annotations

import concurrent.futures
import hashlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.faults.harness import children_peak_rss
from connectors.slack.signature import SignatureVerifier
from connectors.sources.alertmanager import example_payload
from connectors.sources.remote_write import encode_remote_write
from harness.workers import kill9
from schemas import Alert, DeadLetter, LogRecord, MetricSample, decode, encode
from streams.catalog import Catalog
from streams.gateway.decoding import PROCESS_BODY
from streams.settings import KafkaSettings
from tests.integration.connectors.support import (
    AUTH,
    RECENT,
    SIGNING,
    STAMP,
    TOKEN,
    make_gateway,
    read_keyed,
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
# what orjson cannot write: NaN/Infinity tokens, numbers beyond any range, nesting
# between orjson's write (255) and read (1024) limits, invalid UTF-8, big bodies
hostile_tokens = st.sampled_from([
    b"NaN", b"-Infinity", b"1e999", b"9" * 400, b'"\ud800"', b'"\xff"', b"\xfe\xff",
    b"[" * 300 + b"]" * 300, b"{" * 300, b'"2999-01-01T00:00:00Z"', b'"0001-01-01T00:00:00Z"',
    b'"' + b"x" * 1_100_000 + b'"',
])  # fmt: skip
valid_bodies = st.sampled_from([
    b'{"name":"cpu","value":1,"time":"%s","labels":{"a":"b"}}' % STAMP.encode(),
    b'{"time":"%s","message":"m","http_status":500}' % STAMP.encode(),
    example_payload(),
    b'{"routing_key":"RKEY","event_action":"trigger","payload":{"summary":"s","source":"x",'
    b'"severity":"info"}}',
])  # fmt: skip


@st.composite
def spliced(draw: st.DrawFn) -> bytes:
    """A valid body with one of its values replaced by a hostile token."""
    import re

    body = draw(valid_bodies)
    spans = [m.span() for m in re.finditer(rb'"(?:[^"\\]|\\.)*"|-?\d[\d.eE+-]*', body)]
    start, end = draw(st.sampled_from(spans))
    return body[:start] + draw(hostile_tokens) + body[end:]


bodies = st.one_of(
    st.binary(max_size=600),
    json_values.map(lambda v: orjson.dumps(v)),
    st.lists(json_values, max_size=5).map(lambda vs: b"\n".join(orjson.dumps(v) for v in vs)),
    spliced(),
    st.lists(spliced(), min_size=2, max_size=4).map(b"\n".join),
    hostile_tokens,
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
    max_examples=int(os.environ.get("TOCSIN_FUZZ_EXAMPLES", "150")),
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


# -- hostile input against a gateway process of its own (its memory is measurable) -----


@dataclass
class GatewayProcess:
    url: str
    proc: subprocess.Popen[bytes]

    def memory_kb(self, field: str) -> int:
        """VmHWM (peak resident set) or VmRSS of the gateway process, in kB."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
        raise AssertionError(f"no {field} in /proc/{self.proc.pid}/status")

    def decoders_peak_kb(self) -> dict[int, int]:
        """The peak of each of the gateway's decoding processes, in kB."""
        return {p: n // 1024 for p, n in children_peak_rss(self.proc.pid).items()}


@pytest.fixture
def gateway_process(
    kafka_settings: KafkaSettings, topics: Catalog, tmp_path: Path
) -> Iterator[GatewayProcess]:
    port = _unused_port()
    env = {
        **os.environ,
        "TOCSIN_BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers,
        "TOCSIN_TOPIC_PREFIX": kafka_settings.topic_prefix,
        "TOCSIN_GATEWAY_TOKENS": TOKEN,
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "streams.cli.main", "run", "gateway",
         "--host", "127.0.0.1", "--port", str(port)],
        env=env, cwd=Path(__file__).parents[3], start_new_session=True,
        stdout=(tmp_path / "gateway.log").open("ab"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (tmp_path / "gateway.log").read_text()[-2000:]
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "gateway not ready within 60 s"
            time.sleep(0.2)
        yield GatewayProcess(url, proc)
    finally:
        kill9(proc)


def _letters(settings: KafkaSettings, topics: Catalog) -> list[DeadLetter]:
    return [decode(DeadLetter, v) for v in read_values(settings, topics.name("deadletter"))]


def _invalid_item(i: int) -> bytes:
    return b'{"name":"cpu","value":"high%d","time":"%s"}' % (i, STAMP.encode())


def _post(url: str, path: str, body: bytes, ctype: str = "application/json") -> httpx.Response:
    headers = {**AUTH, "Content-Type": ctype}
    return httpx.post(f"{url}{path}", content=body, headers=headers, timeout=120)


def test_thousands_of_invalid_items_are_one_bounded_dead_letter_in_bounded_memory(
    gateway_process: GatewayProcess, kafka_settings: KafkaSettings, topics: Catalog
) -> None:
    url = gateway_process.url
    # the decoding processes start on the first big bodies: two at once start both
    warm = b"[" + b",".join(b'{"name":"cpu","value":%d,"time":"%s"}' % (i, STAMP.encode())
                            for i in range(5_000)) + b"]"  # fmt: skip
    assert len(warm) > PROCESS_BODY
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        assert [r.status_code for r in pool.map(lambda _: _post(url, "/v1/metrics", warm),
                                                range(2))] == [202, 202]  # fmt: skip
    idle_peak = gateway_process.memory_kb("VmHWM")
    idle_decoders = gateway_process.decoders_peak_kb()
    # the reported case: 200,000 small items (400 KB) took 1.7 GB and 4 s of event loop
    tiny = b"[" + b",".join([b"{}"] * 200_000) + b"]"
    started = time.monotonic()
    too_many = _post(url, "/v1/metrics", tiny)
    assert too_many.status_code == 413 and "10000" in too_many.json()["error"]
    print(f"200,000 items: {too_many.status_code} in {time.monotonic() - started:.3f} s")
    assert time.monotonic() - started < 10
    # under the item cap: every item invalid, each named, one dead letter for them all
    invalid = b"[" + b",".join(_invalid_item(i) for i in range(10_000)) + b"]"
    resp = _post(url, "/v1/metrics", invalid)
    doc = resp.json()
    assert resp.status_code == 400 and (doc["accepted"], doc["rejected"]) == (0, 10_000)
    assert len(doc["errors"]) == 100 and doc["errors"][99]["position"] == 99
    assert "MetricSample.value" in doc["errors"][0]["error"]
    # the largest bodies the gateway takes: 16 MiB of tiny items, of NDJSON lines
    huge = b"[" + b",".join([b"[]"] * 5_000_000) + b"]"
    assert _post(url, "/v1/logs", huge).status_code == 413
    lines = b"\n".join(_invalid_item(i) + b" " * 1500 for i in range(10_000))
    assert _post(url, "/v1/metrics", lines, "application/x-ndjson").status_code == 400
    growth_kb = gateway_process.memory_kb("VmHWM") - idle_peak
    decoders_kb = max(kb - idle_decoders.get(p, 0)
                      for p, kb in gateway_process.decoders_peak_kb().items())  # fmt: skip
    print(f"gateway peak RSS {idle_peak} kB idle, +{growth_kb} kB after the bodies; "
          f"a decoding process +{decoders_kb} kB at most (idle {idle_decoders} kB)")  # fmt: skip
    largest = 16 * 1024 * 1024
    # decoding keeps no tree of the body: what remains is the body itself, aiohttp's
    # copy of it and the dead letter's prefix (a decoding process holds its copy of the
    # body as it arrived, the body and what it decodes, one body at a time)
    assert growth_kb * 1024 < 4 * largest, f"peak grew by {growth_kb} kB"
    assert decoders_kb * 1024 < 3 * largest, f"a decoding process grew by {decoders_kb} kB"
    letters = _letters(kafka_settings, topics)
    assert len(letters) == 4, "one dead letter per refused request, not one per item"
    first = next(d for d in letters if d.value_size == len(tiny))
    assert first.truncated and first.reason == "too_many_items"
    assert first.value == tiny[: len(first.value or b"")]
    assert first.value_sha256 == hashlib.sha256(tiny).hexdigest()
    everything = next(d for d in letters if d.error.startswith("10000 of 10000 items rejected"))
    assert "item 0: MetricSample.value" in everything.error and everything.truncated
    assert max(len(encode(d)) for d in letters) < 1_000_000


def test_healthz_answers_while_big_bodies_are_decoded(gateway_process: GatewayProcess) -> None:
    url = gateway_process.url
    labels = {f"label_{k}": "v" * 40 for k in range(20)}
    item = orjson.dumps({"name": "cpu", "value": 1.0, "time": STAMP, "labels": labels})
    body = b"[" + b",".join([item] * 10_000) + b"]"  # 10,000 valid samples, 11 MB
    # the big bodies are sent by another process: sending them from threads of this one
    # would hold this process' GIL and time the probe's client, not the gateway
    sender = (
        "import sys, concurrent.futures, httpx\n"
        "body = sys.stdin.buffer.read()\n"
        "def post(_):\n"
        f"    return httpx.post({url + '/v1/metrics'!r}, content=body, timeout=120,\n"
        f"                      headers={{**{AUTH!r}, 'Content-Type': 'application/json'}}"
        ").status_code\n"
        "with concurrent.futures.ThreadPoolExecutor(4) as pool:\n"
        "    print(' '.join(str(c) for c in pool.map(post, range(6))))\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", sender], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE)  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(body)
    proc.stdin.close()
    latencies: list[float] = []
    with httpx.Client(timeout=10) as c:
        while proc.poll() is None:
            started = time.perf_counter()
            assert c.get(f"{url}/healthz").status_code == 200
            latencies.append(time.perf_counter() - started)
            time.sleep(0.02)
    answered = [int(code) for code in proc.stdout.read().split()]
    assert answered == [202] * 6
    latencies.sort()
    assert len(latencies) >= 10, "the big bodies were decoded too fast to measure anything"
    p95 = latencies[int(len(latencies) * 0.95)]
    print(f"/healthz: {len(latencies)} probes, p50 {latencies[len(latencies) // 2]:.3f} s, "
          f"p95 {p95:.3f} s, max {latencies[-1]:.3f} s")  # fmt: skip
    # what a Kubernetes probe notices (its default timeout is 1 s): no answer near it.
    # Decoded on threads of the gateway's own process, bodies this big hold the
    # interpreter lock and stall the event loop for about half a second and more, once
    # per body; one slow probe alone is the scheduler of a loaded machine, not that
    assert p95 < 0.15 and latencies[-2] < 0.4, (p95, latencies[-5:])


# -- the reported cases, each a 4xx with a bounded dead letter -------------------------


@pytest.fixture
def gw(kafka_settings: KafkaSettings, topics: Catalog) -> Iterator[httpx.Client]:
    with (
        serve(make_gateway(kafka_settings).app()) as url,
        httpx.Client(base_url=url, timeout=60, headers=AUTH) as client,
    ):
        yield client


NDJSON = "application/x-ndjson"


def _sample(value: float, **labels: str) -> bytes:
    return orjson.dumps({"name": "cpu", "value": value, "time": STAMP, "labels": labels})


@pytest.mark.parametrize("path", ["/v1/metrics", "/v1/logs"])
@pytest.mark.parametrize("depth", [256, 300, 1000])
def test_json_nested_between_orjsons_write_and_read_limits_answers_400(
    gw: httpx.Client, path: str, depth: int
) -> None:
    deep = b"[" * depth + b"]" * depth
    for body, ctype in (
        (b"[" + deep + b"]", "application/json"),
        (b'{"meta":1,"samples":[' + deep + b"]}", "application/json"),  # parsed whole
        (b'{"time":"' + STAMP.encode() + b'","labels":' + deep + b"}", "application/json"),
        (_sample(1.0) + b"\n" + deep, "application/x-ndjson"),
    ):
        resp = gw.post(path, content=body, headers={"Content-Type": ctype})
        assert resp.status_code == 400, (body[:40], resp.status_code, resp.text[:200])


def test_oversized_bodies_and_fields_answer_4xx_naming_the_field(
    gw: httpx.Client, kafka_settings: KafkaSettings, topics: Catalog
) -> None:
    garbage = b"{" + b"x" * 800_000  # an invalid 800 KB body
    assert gw.post("/v1/metrics", content=garbage).status_code == 400
    beyond = gw.post("/v1/logs", content=b"[" + b" " * (16 * 2**20) + b"]")
    assert beyond.status_code == 413  # refused by aiohttp while reading: never decoded
    big = "x" * 900_000
    am = orjson.loads(example_payload())
    am["alerts"][0]["labels"]["instance"] = big
    resp = gw.post("/v1/alertmanager", content=orjson.dumps(am))
    assert resp.status_code == 400 and "Alert.labels.instance" in resp.json()["error"]
    am = orjson.loads(example_payload())
    am["alerts"][0]["annotations"]["description"] = big
    resp = gw.post("/v1/alertmanager", content=orjson.dumps(am))
    assert resp.status_code == 400 and "Alert.annotations.description" in resp.json()["error"]
    event = {"routing_key": "RKEY", "event_action": "trigger",
             "payload": {"summary": big, "source": "db-1", "severity": "critical"}}  # fmt: skip
    resp = gw.post("/v2/enqueue", json=event)  # beyond PagerDuty's own 512 KiB
    assert resp.status_code == 413 and resp.json()["status"] == "invalid event"
    event["payload"]["summary"] = "x" * 2000  # type: ignore[index]
    resp = gw.post("/v2/enqueue", json=event)
    assert resp.status_code == 400 and "payload.summary" in str(resp.json()["errors"])
    letters = _letters(kafka_settings, topics)
    assert len(letters) == 5
    big = [d for d in letters if d.truncated]
    assert len(big) == 4
    for letter in big:
        assert letter.value_size is not None and letter.value_size > 800_000
        assert len(letter.value or b"") == 256 * 1024 and len(encode(letter)) < 1_000_000
    assert not read_values(kafka_settings, topics.name("alerts"))


def test_an_alert_over_kafkas_record_limit_is_refused_naming_its_largest_field(
    gw: httpx.Client, kafka_settings: KafkaSettings, topics: Catalog
) -> None:
    """Every field within its bound, but 32 annotations of control characters (six
    bytes each in JSON) make a 1.5 MB record: refused, not a 503 from Kafka."""
    am = orjson.loads(example_payload())
    am["alerts"][0]["annotations"] = {f"note_{i}": "\x01" * 8000 for i in range(31)}
    ok = orjson.loads(example_payload())["alerts"][0]
    am["alerts"].append({**ok, "fingerprint": "c0ffee0000000002"})
    resp = gw.post("/v1/alertmanager", content=orjson.dumps(am))
    doc = resp.json()
    assert resp.status_code == 400 and (doc["accepted"], doc["rejected"]) == (1, 1)
    assert doc["errors"][0]["position"] == 0 and "Alert.annotations" in doc["error"]
    [(key, _)] = read_keyed(kafka_settings, topics.name("alerts"))
    assert key == b"c0ffee0000000002"


def test_a_partially_bad_request_resent_writes_identical_event_ids(
    gw: httpx.Client, kafka_settings: KafkaSettings, topics: Catalog
) -> None:
    lines = [_sample(float(i), host=f"web-{i}") for i in range(3)]
    lines.append(_sample(3.0, host="x" * 1_500_000))  # a 1.5 MB label
    body = b"\n".join(lines)
    answers = []
    for _ in range(2):  # the client resends, as a 4xx listing positions allows
        resp = gw.post(
            "/v1/metrics", content=body, headers={"Content-Type": "application/x-ndjson"}
        )
        answers.append((resp.status_code, resp.json()["accepted"], resp.json()["rejected"]))
        assert resp.json()["errors"][0]["position"] == 3
        assert "MetricSample.labels.host" in resp.json()["errors"][0]["error"]
    assert answers == [(400, 3, 1)] * 2
    stored = [decode(MetricSample, v) for v in read_values(kafka_settings, topics.name("metrics"))]
    ids = sorted(s.event_id for s in stored)
    assert len(ids) == 6 and len(set(ids)) == 3 and ids[0::2] == ids[1::2]
    # the same through remote-write and Alertmanager: a resend carries the same ids
    millis = int(RECENT.timestamp() * 1000)
    rw = encode_remote_write([({"__name__": "up", "job": "n"}, [(1.0, millis)])])
    for _ in range(2):
        assert gw.post("/api/v1/write", content=rw).status_code == 204
    for _ in range(2):
        assert gw.post("/v1/alertmanager", content=example_payload()).status_code == 200
    metrics = [decode(MetricSample, v) for v in read_values(kafka_settings, topics.name("metrics"))]
    ups = [s.event_id for s in metrics if s.name == "up"]
    alerts = [decode(Alert, v).event_id for v in read_values(kafka_settings, topics.name("alerts"))]
    assert len(ups) == 2 and len(set(ups)) == 1
    assert len(alerts) == 2 and len(set(alerts)) == 1


def test_identical_items_in_one_request_are_distinct_events(
    gw: httpx.Client, kafka_settings: KafkaSettings, topics: Catalog
) -> None:
    line = orjson.dumps({"time": STAMP, "message": "GET / 502", "http_status": 502})
    assert gw.post("/v1/logs", content=line + b"\n" + line).status_code == 202
    assert gw.post("/v1/logs", content=line + b"\n" + line).status_code == 202  # a resend
    ids = [decode(LogRecord, v).event_id for v in read_values(kafka_settings, topics.name("logs"))]
    assert len(ids) == 4 and len(set(ids)) == 2


def test_samples_out_of_the_time_bounds_are_refused_naming_the_field(
    gw: httpx.Client, kafka_settings: KafkaSettings, topics: Catalog
) -> None:
    future = {"name": "cpu", "value": 1, "time": "2999-01-01T00:00:00Z"}
    past = {"name": "cpu", "value": 1, "time": "1970-01-01T00:00:01Z"}
    resp = gw.post("/v1/metrics", json=[future, past, {**future, "time": STAMP}])
    doc = resp.json()
    assert resp.status_code == 400 and (doc["accepted"], doc["rejected"]) == (1, 2)
    assert "MetricSample.time: 2999-01-01" in doc["errors"][0]["error"]
    assert "ahead" in doc["errors"][0]["error"] and "in the past" in doc["errors"][1]["error"]
    log = gw.post("/v1/logs", json={"time": "2999-01-01T00:00:00Z", "message": "x"})
    assert log.status_code == 400 and "LogRecord.time" in log.json()["errors"][0]["error"]
    rw = encode_remote_write([({"__name__": "up"}, [(1.0, 32_503_680_000_000)])])
    resp = gw.post("/api/v1/write", content=rw)
    assert resp.status_code == 400 and "MetricSample.time: 3000-01-01" in resp.text
    [stored] = read_values(kafka_settings, topics.name("metrics"))
    assert decode(MetricSample, stored).time.isoformat().startswith(RECENT.isoformat()[:10])


def test_a_request_the_producer_queue_cannot_hold_is_refused_before_any_record_is_queued(
    kafka_settings: KafkaSettings, topics: Catalog
) -> None:
    lines = [_sample(float(i), host=f"h{i}") for i in range(80)]
    with (
        serve(make_gateway(kafka_settings, queue_max=50).app()) as url,
        httpx.Client(base_url=url, timeout=60, headers=AUTH) as client,
    ):
        full = client.post("/v1/metrics", content=b"\n".join(lines))
        assert full.status_code == 429 and int(full.headers["Retry-After"]) >= 1
        assert client.post("/v1/metrics", content=b"\n".join(lines[:40])).status_code == 202
    stored = [decode(MetricSample, v) for v in read_values(kafka_settings, topics.name("metrics"))]
    assert sorted(s.value for s in stored) == [float(i) for i in range(40)]

"""Hostile bytes on every intake: NaN and Infinity tokens, nesting around the parser's
limits, numbers out of range, invalid UTF-8, bodies of megabytes, lying content types
and encodings, absurd Slack headers. A caller's mistake is a 4xx whatever its size or
shape; nothing answers 5xx; a big body of small invalid items costs a bounded amount of
memory and does not stall the health check."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from benchmarks.faults.harness import free_port, kill9, peak_rss, start_gateway, wait_healthy
from benchmarks.faults.hostile import corpus, requests
from streams.admin import create_topics
from streams.catalog import Catalog
from streams.kafka import make_admin
from streams.settings import KafkaSettings
from tests.integration.connectors.support import AUTH, SIGNING, TOKEN, make_gateway, serve


@pytest.fixture(scope="module")
def gateway(broker: str) -> Iterator[httpx.Client]:
    s = KafkaSettings(bootstrap_servers=broker, topic_prefix=f"z{uuid.uuid4().hex[:8]}.",
                      partitions=1)  # fmt: skip
    create_topics(make_admin(s), Catalog(s))
    with serve(make_gateway(s).app()) as url, httpx.Client(base_url=url, timeout=60) as c:
        yield c


def _server_errors(client: httpx.Client, cases: object) -> list[str]:
    bad = []
    for path, headers, body, what in cases:  # type: ignore[attr-defined]
        # raw bytes: httpx refuses a str header beyond ASCII, which a socket sends anyway
        raw = {k: v.encode() for k, v in headers.items()}
        resp = client.post(path, content=body, headers=raw)
        if resp.status_code >= 500:
            bad.append(f"{what} on {path} ({len(body)} bytes): {resp.status_code} "
                       f"{resp.text[:160]}")  # fmt: skip
    return bad


def test_each_known_hostile_input_answers_a_client_error(gateway: httpx.Client) -> None:
    bad = _server_errors(gateway, corpus(TOKEN, SIGNING))
    assert not bad, "\n".join(bad)
    assert gateway.get("/healthz").status_code == 200


def test_generated_hostile_bytes_never_answer_a_server_error(gateway: httpx.Client) -> None:
    bad = _server_errors(gateway, requests(seed=int(time.time()), n=400, token=TOKEN,
                                           signing=SIGNING, large=0.01))  # fmt: skip
    assert not bad, "\n".join(bad[:20])
    assert gateway.get("/healthz").status_code == 200


def test_many_small_invalid_items_cost_bounded_memory_and_never_stall_health(
    kafka_settings: KafkaSettings, topics: Catalog, tmp_path: Path
) -> None:
    body = b"[" + b",".join([b'{"v":1}'] * 200_000) + b"]"  # 1.4 MB of invalid samples
    port, log = free_port(), tmp_path / "gateway.log"
    url = f"http://127.0.0.1:{port}"
    proc = start_gateway(kafka_settings, log, port, TOKEN, SIGNING)
    try:
        wait_healthy(url, proc, log)
        before = peak_rss(proc.pid)
        answer: list[httpx.Response] = []

        def post() -> None:
            with httpx.Client(base_url=url, timeout=60) as c:
                answer.append(c.post("/v1/metrics", content=body, headers=AUTH))

        poster = threading.Thread(target=post)
        slowest = 0.0
        with httpx.Client(base_url=url, timeout=60) as probe:
            poster.start()
            while poster.is_alive():
                started = time.monotonic()
                assert probe.get("/healthz").status_code == 200
                slowest = max(slowest, time.monotonic() - started)
                time.sleep(0.05)
        grown = peak_rss(proc.pid) - before
    finally:
        kill9(proc)
    assert answer and 400 <= answer[0].status_code < 500, answer[0].text[:300] if answer else ""
    assert grown < 32 * len(body), f"peak memory grew {grown >> 20} MiB for {len(body)} bytes"
    assert slowest < 1.0, f"the health check waited {slowest:.1f}s behind one request"

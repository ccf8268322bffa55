"""Hostile bytes against every decoder: raw bytes, valid payloads with bytes flipped,
nesting between orjson's write limit (255) and read limit (1024), NaN/Infinity tokens,
numbers beyond any range, invalid UTF-8, and large bodies. A decoder answers with
events and errors as data (ItemError, DecodeError, BodyError), never another exception
that would crash an ingest worker or become a gateway 5xx."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.sources.alertmanager import decode_alertmanager_items, example_payload
from connectors.sources.batches import BodyError, ItemError, inflate, iter_batch
from connectors.sources.body import MAX_ITEMS
from connectors.sources.checkmk import decode_checkmk_items
from connectors.sources.checkmk import example_payload as checkmk_example
from connectors.sources.collectd import decode_collectd
from connectors.sources.influx import decode_influx
from connectors.sources.jsonlog import decode_json_logs
from connectors.sources.otlp import decode_otlp
from connectors.sources.pagerduty import decode_pagerduty
from connectors.sources.remote_write import decode_remote_write, encode_remote_write
from connectors.sources.zabbix import decode_zabbix
from connectors.sources.zabbix import example_payload as zabbix_example
from schemas import Alert, DecodeError, LogRecord, MetricSample

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
EXAMPLES = int(os.environ.get("TOCSIN_FUZZ_EXAMPLES", "400"))
SAMPLE = b'{"name":"cpu","value":0.5,"time":"2026-03-01T12:00:00Z","labels":{"host":"a"}}'
LOG = b'{"time":"2026-03-01T12:00:00Z","message":"GET /","http_status":502,"source":"nginx"}'
VALID: dict[str, bytes] = {
    "metrics": b"[" + SAMPLE + b"," + SAMPLE + b"]",
    "metrics_ndjson": SAMPLE + b"\n" + SAMPLE,
    "logs": LOG + b"\n" + LOG,
    "alertmanager": example_payload(),
    "pagerduty": b'{"routing_key":"k","event_action":"trigger","payload":'
    b'{"summary":"disk full","source":"db-1","severity":"critical"}}',
    "remote_write": encode_remote_write([({"__name__": "up", "job": "n"}, [(1.0, 1)])]),
    "collectd": b'[{"values":[1],"dstypes":["gauge"],"dsnames":["value"],"time":1.5,'
    b'"host":"h","plugin":"cpu","type":"cpu"}]',
    "influx": b"cpu,host=a usage=1.5,n=3i 1772366400000000000\nmem value=3",
    "otlp": b'{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"x","gauge":'
    b'{"dataPoints":[{"asDouble":1.0,"timeUnixNano":"1772366400000000000"}]}}]}]}]}',
    "jsonlog": b'{"time":"2026-03-01T12:00:00Z","status":502,"request_time":0.25}',
    "zabbix": zabbix_example("recovery"),
    "checkmk": checkmk_example(),
}


def _batch(model: type[Any], ctype: str) -> Callable[[bytes], object]:
    def run(body: bytes) -> object:
        out = []
        for position, item in iter_batch(model, body, ctype):
            assert isinstance(item, model | ItemError), type(item)
            assert isinstance(position, int) and position >= 0
            out.append(item)
        return out

    return run


def _alertmanager(body: bytes) -> object:
    good, bad = decode_alertmanager_items(body, NOW)
    assert all(isinstance(a, Alert) for _, a in good)
    assert all(isinstance(e, ItemError) for e in bad)
    return good


DECODERS: dict[str, Callable[[bytes], object]] = {
    "metrics": _batch(MetricSample, "application/json"),
    "metrics_ndjson": _batch(MetricSample, "application/x-ndjson"),
    "logs": _batch(LogRecord, "application/json"),
    "alertmanager": _alertmanager,
    "pagerduty": lambda b: decode_pagerduty(b, NOW),
    "remote_write": decode_remote_write,
    "collectd": decode_collectd,
    "influx": lambda b: decode_influx(b, NOW),
    "otlp": decode_otlp,
    "jsonlog": lambda b: decode_json_logs(b, NOW),
    "zabbix": lambda b: decode_zabbix(b, NOW),
    "checkmk": lambda b: decode_checkmk_items(b, NOW),
    "gzip": lambda b: inflate(b, "gzip"),
    "deflate": lambda b: inflate(b, "deflate"),
}
ERRORS_AS_DATA = (DecodeError, BodyError)


def _decode(name: str, body: bytes) -> None:
    with contextlib.suppress(ERRORS_AS_DATA):  # anything else fails the test
        DECODERS[name](body)


NASTY_TOKENS = [
    b"NaN", b"-NaN", b"Infinity", b"-Infinity", b"1e999", b"-1e999", b"1e-999",
    b"9" * 400, b"-" + b"9" * 5000, b"0x10", b"1.", b".5", b"01", b"null", b"true",
    b'"\\ud800"', b'"\xff\xfe"', b'"\\u0000"', b'"' + b"\\" * 301 + b'"',
    b"[" * 300 + b"]" * 300, b"[" * 1100 + b"]" * 1100, b'{"a":' * 600 + b"1" + b"}" * 600,
    b"[" * 300, b'"unterminated', b"\x00", b"{}", b"[]", b'"2999-01-01T00:00:00Z"',
    b'"0001-01-01T00:00:00Z"', b'"9999-12-31T23:59:59+14:00"', b"-1", b"18446744073709551616",
]  # fmt: skip


def _replace_values(body: bytes, token: bytes, data: st.DataObject) -> bytes:
    """Replace one scalar of a valid JSON body (a number, string, true/false) by ``token``."""
    import re

    spans = [m.span() for m in re.finditer(rb'"(?:[^"\\]|\\.)*"|-?\d[\d.eE+-]*|true|false', body)]
    if not spans:
        return body + token
    start, end = data.draw(st.sampled_from(spans))
    return body[:start] + token + body[end:]


def _mutate(body: bytes, data: st.DataObject) -> bytes:
    ops = data.draw(st.lists(st.tuples(st.integers(0, max(len(body), 1)), st.binary(max_size=4),
                                       st.integers(0, 4)), max_size=4))  # fmt: skip
    for at, insert, cut in ops:
        body = body[:at] + insert + body[at + cut :]
    return body


hostile = {
    "derandomize": False,
    "deadline": None,
    "max_examples": EXAMPLES,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}


@settings(**hostile)
@given(name=st.sampled_from(sorted(DECODERS)), body=st.binary(max_size=4096))
def test_raw_bytes(name: str, body: bytes) -> None:
    _decode(name, body)


@settings(**hostile)
@given(name=st.sampled_from(sorted(VALID)), data=st.data())
def test_valid_payloads_with_bytes_flipped(name: str, data: st.DataObject) -> None:
    _decode(name, _mutate(VALID[name], data))


@settings(**hostile)
@given(name=st.sampled_from(sorted(VALID)), token=st.sampled_from(NASTY_TOKENS), data=st.data())
def test_valid_payloads_with_a_hostile_value(name: str, token: bytes, data: st.DataObject) -> None:
    _decode(name, _replace_values(VALID[name], token, data))


@pytest.mark.parametrize("depth", [254, 256, 300, 800, 1023, 1025, 5000])
@pytest.mark.parametrize("name", sorted(DECODERS))
def test_nesting_between_and_beyond_orjsons_limits(name: str, depth: int) -> None:
    for body in (
        b"[" * depth + b"]" * depth,
        b"[" + b"[" * depth + b"]" * depth + b"," + SAMPLE + b"]",
        b'{"samples":[' + b'{"name":' * depth + b"1" + b"}" * depth + b"]}",
        b'{"version":"4","alerts":[{"labels":' + b"[" * depth + b"]" * depth + b"}]}",
        b'{"resourceMetrics":[{"resource":{"attributes":[{"key":"k","value":{"stringValue":'
        + b"[" * depth
        + b"]" * depth
        + b"}}]}}]}",
        b'{"status":' + b"[" * depth + b"]" * depth + b"}",
    ):
        _decode(name, body)


@pytest.mark.parametrize("name", sorted(DECODERS))
def test_large_bodies(name: str) -> None:
    big_label = b'{"name":"cpu","value":1,"time":"2026-03-01T12:00:00Z","labels":{"a":"'
    big_label += b"x" * 1_500_000 + b'"}}'
    for body in (
        b"[" + b",".join([b"{}"] * (MAX_ITEMS + 5)) + b"]",  # too many items
        b"\n".join([SAMPLE] * (MAX_ITEMS + 5)),
        big_label,
        b"[" + b"1," * 3_000_000 + b"1]",
        b'"' + b"x" * 4_000_000 + b'"',
        b"\xff" * 1_000_000,
        b"cpu,host=a v=1 " + b"9" * 100_000,
        b'["' + b'\\"' * 2_000_000,  # escaped quotes, never closed: must not scan n^2
    ):
        started = time.monotonic()
        _decode(name, body)
        assert time.monotonic() - started < 30, f"{name}: {body[:20]!r} took too long"


def test_errors_are_data_for_each_bad_item_and_name_the_field() -> None:
    """The item-level contract the gateway answers with: position and field."""
    future = SAMPLE.replace(b"2026-03-01", b"2999-01-01")
    nan = SAMPLE.replace(b"0.5", b"NaN")
    deep = b"[" * 300 + b"]" * 300
    body = b"\n".join([SAMPLE, nan, deep, SAMPLE.replace(b'"a"', b'"\xff"'), future])
    items = list(iter_batch(MetricSample, body, "application/x-ndjson"))
    assert [p for p, _ in items] == [0, 1, 2, 3, 4]
    errors = {p: i.message for p, i in items if isinstance(i, ItemError)}
    assert set(errors) == {1, 2, 3}
    assert "MetricSample.value" in errors[1] and "JSON" in errors[2] and "JSON" in errors[3]
    assert isinstance(items[4][1], MetricSample)  # time bounds are the gateway's (its clock)

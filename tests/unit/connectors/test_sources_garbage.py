"""Whatever bytes arrive, every decoder answers with events or a DecodeError — never
another exception that would crash a worker or become a 5xx."""

from __future__ import annotations

import contextlib
import os
from datetime import UTC, datetime
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.sources.alertmanager import decode_alertmanager
from connectors.sources.batches import BodyError, decode_batch
from connectors.sources.collectd import decode_collectd
from connectors.sources.influx import decode_influx
from connectors.sources.jsonlog import decode_json_logs
from connectors.sources.otlp import decode_otlp
from connectors.sources.pagerduty import decode_pagerduty
from connectors.sources.remote_write import decode_remote_write
from schemas import DecodeError, LogRecord, MetricSample

NOW = datetime(2026, 1, 1, tzinfo=UTC)
DECODERS: dict[str, Any] = {
    "alertmanager": lambda b: decode_alertmanager(b, NOW),
    "pagerduty": lambda b: decode_pagerduty(b, NOW),
    "remote_write": decode_remote_write,
    "collectd": decode_collectd,
    "influx": lambda b: decode_influx(b, NOW),
    "otlp": decode_otlp,
    "jsonlog": lambda b: decode_json_logs(b, NOW),
    "metrics": lambda b: decode_batch(MetricSample, b, "application/json"),
    "logs": lambda b: decode_batch(LogRecord, b, "application/x-ndjson"),
}

scalars = (
    st.none()
    | st.booleans()
    | st.floats()
    | st.integers(-(2**63), 2**63 - 1)
    | st.text(max_size=12)
)
keys = st.sampled_from(
    [
        "version",
        "alerts",
        "labels",
        "startsAt",
        "endsAt",
        "status",
        "routing_key",
        "event_action",
        "payload",
        "severity",
        "summary",
        "source",
        "values",
        "dstypes",
        "dsnames",
        "time",
        "host",
        "plugin",
        "type",
        "resourceMetrics",
        "scopeMetrics",
        "metrics",
        "gauge",
        "dataPoints",
        "asInt",
        "asDouble",
        "name",
        "value",
        "http_status",
        "timeUnixNano",
        "attributes",
        "key",
        "sum",
        "histogram",
    ]
)
documents = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(keys | st.text(max_size=6), inner, max_size=6)
    ),
    max_leaves=25,
)
bodies = st.one_of(
    st.binary(max_size=300), documents.map(orjson.dumps), st.text(max_size=200).map(str.encode)
)


@settings(max_examples=int(os.environ.get("TOCSIN_FUZZ_EXAMPLES", "300")), deadline=None)
@given(name=st.sampled_from(sorted(DECODERS)), body=bodies)
def test_every_decoder_answers_events_or_decode_error(name: str, body: bytes) -> None:
    with contextlib.suppress(DecodeError, BodyError):  # anything else fails the test
        DECODERS[name](body)


OUT_OF_RANGE = ["99999999999999999999999999", "-99999999999999999999999", "0", "1e30"]


@given(
    stamp=st.sampled_from(OUT_OF_RANGE) | st.integers().map(str),
    value=st.sampled_from(["1", "-1e308", "1e400", "9" * 40 + "i", "t", '"s"', "x"]),
)
def test_timestamps_and_values_out_of_any_range(stamp: str, value: str) -> None:
    """Regression: an epoch beyond time_t raised OverflowError (influx) / OSError (OTLP)."""
    with contextlib.suppress(DecodeError):
        decode_influx(f"cpu,host=a v={value} {stamp}".encode(), NOW)
    point = {"asDouble": 1.0, "timeUnixNano": stamp}
    doc = {
        "resourceMetrics": [
            {"scopeMetrics": [{"metrics": [{"name": "x", "gauge": {"dataPoints": [point]}}]}]}
        ]
    }
    with contextlib.suppress(DecodeError):
        decode_otlp(orjson.dumps(doc))
    with contextlib.suppress(DecodeError):
        decode_json_logs(f'{{"ts": {stamp}}}'.encode(), NOW)
    vl = {
        "values": [1],
        "dstypes": ["gauge"],
        "dsnames": ["value"],
        "time": float(stamp),
        "host": "h",
        "plugin": "p",
        "type": "t",
    }
    with contextlib.suppress(DecodeError):
        decode_collectd(orjson.dumps([vl]))

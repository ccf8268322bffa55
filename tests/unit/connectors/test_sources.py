"""Source decoders: what each monitoring tool sends becomes tocsin events, and what is
wrong is named by position and field."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime

import orjson
import pytest

from connectors.sources.alertmanager import decode_alertmanager, example_payload, fingerprint
from connectors.sources.batches import BodyError, decode_batch, inflate
from connectors.sources.body import inflate as raw_inflate
from connectors.sources.collectd import decode_collectd
from connectors.sources.influx import decode_influx
from connectors.sources.jsonlog import decode_json_logs
from connectors.sources.otlp import decode_otlp
from connectors.sources.pagerduty import decode_pagerduty
from connectors.sources.remote_write import decode_remote_write, encode_remote_write
from schemas import DecodeError, LogRecord, MetricSample

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SAMPLE = {"name": "cpu", "value": 0.5, "time": "2026-03-01T12:00:00Z", "labels": {"host": "a"}}


def test_ndjson_and_arrays_and_wrapped_batches_decode_alike() -> None:
    line = orjson.dumps(SAMPLE)
    for body, ctype in (
        (line + b"\n" + line, "application/x-ndjson"),
        (line + b"\n" + line, "application/json"),  # NDJSON sent as JSON
        (orjson.dumps([SAMPLE, SAMPLE]), "application/json"),
        (orjson.dumps({"samples": [SAMPLE, SAMPLE]}), "application/json"),
    ):
        good, bad = decode_batch(MetricSample, body, ctype)
        assert [s.labels for s in good] == [{"host": "a"}] * 2 and not bad


def test_a_bad_item_is_named_by_position_and_field_and_the_rest_passes() -> None:
    body = orjson.dumps([SAMPLE, {**SAMPLE, "value": "NaN"}, SAMPLE])
    good, bad = decode_batch(MetricSample, body, "application/json")
    assert len(good) == 2
    assert bad[0].position == 1 and "MetricSample.value" in bad[0].message


def test_gzip_is_inflated_and_a_bomb_is_refused() -> None:
    assert inflate(gzip.compress(b"[]"), "gzip") == b"[]"
    with pytest.raises(BodyError, match="not valid gzip"):
        inflate(b"\x1f\x8bnot gzip", "gzip")
    with pytest.raises(DecodeError, match="exceeds"):
        raw_inflate(gzip.compress(b"0" * 2000), "gzip", limit=1000)


def test_logs_batch_validates_http_status_range() -> None:
    good, bad = decode_batch(
        LogRecord, b'{"time":"2026-03-01T12:00:00Z","http_status":999}', "application/json"
    )
    assert not good and "http_status" in bad[0].message


def test_alertmanager_webhook_keeps_fingerprint_and_maps_severity() -> None:
    [alert] = decode_alertmanager(example_payload(), NOW)
    assert alert.fingerprint == "c0ffee0000000001"
    assert alert.severity == "critical" and alert.status == "firing" and alert.ends_at is None
    assert alert.rule == "HighCPU" and alert.summary == "CPU above 90%"


def test_alertmanager_tolerates_unknown_and_missing_fields_and_computes_fingerprint() -> None:
    body = orjson.dumps(
        {
            "version": "4",
            "someNewField": {"x": 1},
            "alerts": [
                {
                    "status": "resolved",
                    "labels": {"alertname": "Down", "job": "api"},
                    "startsAt": "2026-03-01T11:00:00Z",
                    "extra": True,
                }
            ],
        }
    )
    [alert] = decode_alertmanager(body, NOW)
    assert alert.status == "resolved" and alert.ends_at == NOW
    # the value Alertmanager itself computes for {alertname="Down", job="api"}
    assert alert.fingerprint == fingerprint({"alertname": "Down", "job": "api"})
    assert len(alert.fingerprint) == 16


def test_alertmanager_names_the_broken_alert() -> None:
    body = orjson.dumps(
        {
            "version": "4",
            "alerts": [
                {"labels": {"alertname": "A"}, "startsAt": "2026-03-01T11:00:00Z"},
                {"labels": {"bad key!": "x"}, "startsAt": "2026-03-01T11:00:00Z"},
            ],
        }
    )
    with pytest.raises(DecodeError, match=r"alerts\.1: .*labels"):
        decode_alertmanager(body, NOW)
    with pytest.raises(DecodeError, match="version"):
        decode_alertmanager(b'{"version": "3", "alerts": []}', NOW)


def test_pagerduty_trigger_and_resolve_share_the_dedup_key() -> None:
    trigger = orjson.dumps(
        {
            "routing_key": "R1",
            "event_action": "trigger",
            "dedup_key": "db-1",
            "payload": {
                "summary": "disk full",
                "source": "db-1",
                "severity": "error",
                "custom_details": {"free": 0},
            },
            "links": [{"href": "https://rb/disk", "text": "runbook"}],
        }
    )
    _, alert = decode_pagerduty(trigger, NOW)
    assert alert.fingerprint == "db-1" and alert.severity == "error"
    assert (
        alert.runbook_url == "https://rb/disk" and '"free":0' in alert.annotations["custom_details"]
    )
    _, resolved = decode_pagerduty(
        orjson.dumps({"routing_key": "R1", "event_action": "resolve", "dedup_key": "db-1"}), NOW
    )
    assert resolved.fingerprint == "db-1" and resolved.status == "resolved"


def test_pagerduty_invalid_events_say_which_field() -> None:
    with pytest.raises(DecodeError, match=r"payload\.severity"):
        decode_pagerduty(
            b'{"routing_key":"R","event_action":"trigger","payload":'
            b'{"summary":"s","source":"x","severity":"bad"}}',
            NOW,
        )
    with pytest.raises(DecodeError, match="dedup_key"):
        decode_pagerduty(b'{"routing_key":"R","event_action":"resolve"}', NOW)
    event, _ = decode_pagerduty(
        b'{"routing_key":"R","event_action":"trigger","payload":'
        b'{"summary":"s","source":"x","severity":"info"}}',
        NOW,
    )
    assert event.dedup_key and len(event.dedup_key) == 32, "generated, as PagerDuty does"


def test_remote_write_round_trip_skips_stale_markers() -> None:
    body = encode_remote_write(
        [
            (
                {"__name__": "up", "job": "node"},
                [(1.0, 1_772_366_400_000), (float("nan"), 1_772_366_415_000)],
            )
        ]
    )
    batch = decode_remote_write(body)
    assert [(s.name, s.labels, s.value) for s in batch.samples] == [("up", {"job": "node"}, 1.0)]
    assert batch.skipped == 1
    with pytest.raises(DecodeError, match="snappy"):
        decode_remote_write(b"\xff\x00garbage")


def test_collectd_value_lists_become_named_samples() -> None:
    body = orjson.dumps(
        [
            {
                "values": [0.3, 0.2],
                "dstypes": ["gauge", "gauge"],
                "dsnames": ["shortterm", "midterm"],
                "time": 1772366400.5,
                "interval": 10,
                "host": "web-1",
                "plugin": "load",
                "plugin_instance": "",
                "type": "load",
                "type_instance": "",
            }
        ]
    )
    samples = decode_collectd(body)
    assert [s.name for s in samples] == [
        "collectd_load_load_shortterm",
        "collectd_load_load_midterm",
    ]
    assert samples[0].labels == {"host": "web-1"}
    with pytest.raises(DecodeError, match="item 0"):
        decode_collectd(
            b'[{"values": [1], "dstypes": [], "dsnames": ["value"], "time": 1,'
            b'"host": "h", "plugin": "p", "type": "t"}]'
        )


def test_influx_line_protocol_with_escapes_and_types() -> None:
    batch = decode_influx(
        b'cpu,host=web\\ 1 usage=12.5,up=t,n=3i,s="a b" 1772366400000000000\n'
        b"# comment\nmem value=3",
        NOW,
    )
    assert [(s.name, s.value) for s in batch.samples] == [
        ("cpu_usage", 12.5),
        ("cpu_up", 1.0),
        ("cpu_n", 3.0),
        ("mem", 3.0),
    ]
    assert batch.samples[0].labels == {"host": "web 1"} and batch.skipped == 1
    assert batch.samples[3].time == NOW
    with pytest.raises(DecodeError, match="line 2"):
        decode_influx(b"cpu usage=1\ncpu usage=abc", NOW)


def test_otlp_gauge_sum_and_histogram() -> None:
    body = orjson.dumps(
        {
            "resourceMetrics": [
                {
                    "resource": {
                        "attributes": [{"key": "service.name", "value": {"stringValue": "api"}}]
                    },
                    "scopeMetrics": [
                        {
                            "metrics": [
                                {
                                    "name": "queue.depth",
                                    "gauge": {
                                        "dataPoints": [
                                            {"asInt": "7", "timeUnixNano": "1772366400000000000"}
                                        ]
                                    },
                                },
                                {
                                    "name": "requests",
                                    "sum": {
                                        "isMonotonic": True,
                                        "dataPoints": [
                                            {
                                                "asDouble": 10.0,
                                                "timeUnixNano": "1772366400000000000",
                                                "attributes": [
                                                    {"key": "code", "value": {"intValue": "500"}}
                                                ],
                                            }
                                        ],
                                    },
                                },
                                {
                                    "name": "latency",
                                    "histogram": {
                                        "dataPoints": [
                                            {
                                                "count": "4",
                                                "sum": 1.5,
                                                "timeUnixNano": "1772366400000000000",
                                            }
                                        ]
                                    },
                                },
                            ]
                        }
                    ],
                }
            ]
        }
    )
    samples = decode_otlp(body)
    assert [(s.name, s.value, s.kind) for s in samples] == [
        ("queue.depth", 7.0, "gauge"),
        ("requests", 10.0, "counter"),
        ("latency_count", 4.0, "counter"),
        ("latency_sum", 1.5, "counter"),
    ]
    assert samples[1].labels == {"service.name": "api", "code": "500"}
    with pytest.raises(DecodeError, match="resourceMetrics"):
        decode_otlp(
            b'{"resourceMetrics": [{"scopeMetrics": [{"metrics": [{"name": "x", '
            b'"gauge": {"dataPoints": [{"asDouble": "oops"}]}}]}]}]}'
        )


def test_json_access_log_lines() -> None:
    body = (
        b'{"time":"2026-03-01T12:00:00Z","status":502,"request_time":0.25,"host":"lb-1",'
        b'"service":"checkout","request":"GET /pay"}\n'
        b'{"ts":1772366400123,"http_status":"200","level":"warn"}'
    )
    first, second = decode_json_logs(body, NOW)
    assert first.http_status == 502 and first.duration_ms == 250.0
    assert first.labels == {"host": "lb-1", "service": "checkout"}
    assert second.http_status == 200 and second.level == "warning"
    assert second.time == datetime(2026, 3, 1, 12, 0, 0, 123000, tzinfo=UTC)
    with pytest.raises(DecodeError, match="line 1"):
        decode_json_logs(b'{"status": 42}', NOW)

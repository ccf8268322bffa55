"""Hostile requests for the gateway's intakes, generated as raw bytes: what a broken or
malicious client sends, not only what a JSON library would write. NaN and Infinity
tokens, nesting around the parser's limits, numbers out of every range, invalid UTF-8,
bodies of megabytes, lying content types and encodings, Slack headers of absurd size.

A request is (path, headers, body, what): ``what`` names the family for the report.
Bad input must get a 4xx (429 is allowed only under load), never a 5xx.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import hmac
import random
import time
import urllib.parse
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime

PATHS = (
    "/v1/metrics",
    "/v1/logs",
    "/v1/alertmanager",
    "/v2/enqueue",
    "/api/v1/write",
    "/api/v2/alerts",
    "/api/v2/silences",
    "/v1/grafana",
    "/v1/sns",
    "/v1/heartbeats/nightly-backup",
    "/slack/interactions",
    "/slack/commands",
)
# valid items carry a recent time: the gateway refuses times far from now
TS = b'"' + datetime.now(UTC).replace(microsecond=0).isoformat().encode() + b'"'
NUMBERS = (
    b"NaN",
    b"Infinity",
    b"-Infinity",
    b"nan",
    b"inf",
    b"1e400",
    b"-1e400",
    b"1e-400",
    b"123456789012345678901234567890123456789",
    b"-0",
    b"0x1F",
    b"01",
    b"1.",
    b".5",
    b"1e",
    b"--1",
    b"9" * 400,
    b"1" + b"0" * 5000,
)
STRINGS = (
    b'"\xff\xfe"',
    b'"\xc3\x28"',
    b'"\\ud800"',
    b'"\\udfff\\ud800"',
    b'"\x00"',
    b'"\xed\xa0\x80"',
    b'"' + b"\xf4\x90\x80\x80" + b'"',
    b'"\\u00"',
    b'"unterminated',
    b'"' + "\u202e\u0000".encode() + b'"',
)
TIMES = (
    TS,
    b'"2999-01-01T00:00:00Z"',
    b'"0001-01-01T00:00:00Z"',
    b'"-1"',
    b"1e300",
    b"-99999999999999999999",
    b'"2026-13-45T99:99:99Z"',
    b"NaN",
    b"null",
)
CTYPES = (
    "application/json",
    "application/x-ndjson",
    "text/plain",
    "application/x-protobuf",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "application/json; charset=utf-16",
    "",
)


def nested(depth: int, rng: random.Random) -> bytes:
    if rng.random() < 0.5:
        return b"[" * depth + b"1" + b"]" * depth
    return b'{"a":' * depth + b"1" + b"}" * depth


def _scalar(rng: random.Random) -> bytes:
    pick = rng.random()
    if pick < 0.35:
        return rng.choice(NUMBERS)
    if pick < 0.7:
        return rng.choice(STRINGS)
    if pick < 0.8:
        return nested(rng.randint(250, 1100), rng)
    if pick < 0.802:
        return b'"' + b"a" * 70_000 + b'"'
    return rng.choice((b"null", b"true", b"{}", b"[]", b'"ok"', b"1.5"))


def _metric(rng: random.Random) -> bytes:
    value = _scalar(rng) if rng.random() < 0.6 else b"1.0"
    when = rng.choice(TIMES)
    labels = rng.choice(
        (
            b'{"host":"a"}',
            b'{"a":"1,b=2"}',
            _scalar(rng),
            b'{"":"x"}',
            b'{"k":' + _scalar(rng) + b"}",
        )
    )
    name = rng.choice((b'"cpu"', _scalar(rng), b'""', b'"' + b"n" * 2000 + b'"'))
    return (
        b'{"name":'
        + name
        + b',"value":'
        + value
        + b',"time":'
        + when
        + b',"labels":'
        + labels
        + b"}"
    )


def _alertmanager(rng: random.Random) -> bytes:
    labels = rng.choice(
        (
            b'{"alertname":"x"}',
            _scalar(rng),
            b'{"alertname":"x","big":"' + b"v" * rng.choice((10, 900_000)) + b'"}',
        )
    )
    return (
        b'{"version":"4","status":"firing","alerts":[{"status":"firing","labels":'
        + labels
        + b',"annotations":{"summary":'
        + _scalar(rng)
        + b'},"startsAt":'
        + rng.choice(TIMES)
        + b"}]}"
    )


def _prometheus_alerts(rng: random.Random) -> bytes:
    """POST /api/v2/alerts as Prometheus sends it, with hostile labels, texts and times."""
    body = _alertmanager(rng)
    alerts = body[body.index(b"[") : body.rindex(b"]") + 1]
    return alerts.replace(b'"startsAt":', b'"endsAt":' + rng.choice(TIMES) + b',"startsAt":')


def _silence(rng: random.Random) -> bytes:
    return (
        b'{"matchers":[{"name":"alertname","value":'
        + rng.choice((b'"x"', b'"("', _scalar(rng)))
        + b',"isRegex":'
        + rng.choice((b"true", b"false", _scalar(rng)))
        + b'}],"startsAt":'
        + rng.choice(TIMES)
        + b',"endsAt":'
        + rng.choice(TIMES)
        + b',"createdBy":'
        + _scalar(rng)
        + b',"comment":""}'
    )


def _pagerduty(rng: random.Random) -> bytes:
    return (
        b'{"routing_key":'
        + rng.choice((b'"RKEY"', b'"anything-at-all"', _scalar(rng)))
        + b',"event_action":'
        + rng.choice((b'"trigger"', b'"resolve"', _scalar(rng)))
        + b',"dedup_key":'
        + _scalar(rng)
        + b',"payload":{"summary":'
        + _scalar(rng)
        + b',"source":"x","severity":"critical","custom_details":'
        + _scalar(rng)
        + b"}}"
    )


def _ndjson(rng: random.Random) -> bytes:
    good = b'{"name":"cpu","value":1.0,"time":' + TS + b',"labels":{"host":"a"}}'
    lines = [good] * rng.randint(0, 3) + [_metric(rng)]
    rng.shuffle(lines)
    return b"\n".join(lines)


def _slack_form(rng: random.Random) -> bytes:
    text = rng.choice(
        (
            "snooze 99999999999d",
            "list",
            "who",
            "ack " + "x" * 5000,
            "snooze -1m",
            "snooze 1e400s",
            "\x00\xff",
            "resolve inc-" + "9" * 300,
        )
    )
    return urllib.parse.urlencode(
        {
            "command": "/incident",
            "text": text,
            "user_id": "U_SRE",
            "team_id": "T1",
            "payload": "{" * 600,
        }
    ).encode()


def _large(rng: random.Random) -> bytes:
    """Megabytes: many small invalid items, one huge label, or plain junk."""
    kind = rng.randint(0, 3)
    if kind == 0:
        return b"[" + b",".join([b'{"v":1}'] * rng.randint(50_000, 250_000)) + b"]"
    if kind == 1:
        big = b'"' + b"x" * rng.randint(900_000, 2_000_000) + b'"'
        return b'{"name":"cpu","value":1,"time":' + TS + b',"labels":{"big":' + big + b"}}"
    if kind == 2:
        return rng.randbytes(rng.randint(1_000_000, 4_000_000))
    good = b'{"name":"cpu","value":1.0,"time":' + TS + b',"labels":{"host":"a"}}'
    return b"\n".join(
        [good] * 3
        + [
            b'{"name":"cpu","value":1,"time":'
            + TS
            + b',"labels":{"big":"'
            + b"y" * 1_500_000
            + b'"}}'
        ]
    )


def _encode(body: bytes, rng: random.Random) -> tuple[bytes, str | None]:
    pick = rng.random()
    if pick < 0.7:
        return body, None
    if pick < 0.8:
        return gzip.compress(body, 1), "gzip"
    if pick < 0.85:
        return zlib.compress(body, 1), "deflate"
    if pick < 0.8505:  # a small body that inflates to 64 MiB: rare, each costs seconds
        return bomb(), "gzip"
    return body, rng.choice(("gzip", "snappy", "br", "zstd", "x-unknown", "gzip, gzip"))


@functools.cache
def bomb() -> bytes:
    return gzip.compress(b"\0" * (64 << 20), 9)


def sign(secret: str, ts: str, body: bytes) -> str:
    base = b"v0:" + ts.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def request(
    rng: random.Random, token: str, signing: str, large: float = 0.002
) -> tuple[str, dict[str, str], bytes, str]:
    path = rng.choice(PATHS)
    if rng.random() < large:
        what, body = "large", _large(rng)
    elif rng.random() < 0.05:
        what, body = "raw bytes", rng.randbytes(rng.randint(0, 2000))
    elif rng.random() < 0.08:
        what, body = "nesting", nested(rng.randint(250, 1100), rng)
    elif path.startswith("/slack"):
        what, body = "slack form", _slack_form(rng)
    elif path == "/v1/alertmanager":
        what, body = "alertmanager", _alertmanager(rng)
    elif path == "/v1/grafana":
        what, body = "grafana", _alertmanager(rng).replace(b'"version":"4"', b'"version":"1"')
    elif path == "/api/v2/alerts":
        what, body = "prometheus alerts", _prometheus_alerts(rng)
    elif path == "/api/v2/silences":
        what, body = "silence", _silence(rng)
    elif path == "/v2/enqueue":
        what, body = "pagerduty", _pagerduty(rng)
    elif path == "/api/v1/write":
        what, body = "remote-write", rng.randbytes(rng.randint(0, 600))
    else:
        what, body = rng.choice((("json", _metric(rng)), ("ndjson", _ndjson(rng))))
    body, encoding = _encode(body, rng)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": rng.choice(CTYPES)}
    if rng.random() < 0.05:
        headers["Authorization"] = rng.choice(("Bearer", "Basic x", "Bearer " + "t" * 9000))
    if encoding:
        headers["Content-Encoding"] = encoding
    if path.startswith("/slack"):
        ts = str(int(time.time()))
        pick = rng.random()
        if pick < 0.1:
            ts = "9" * 400
        elif pick < 0.15:
            ts = rng.choice(("-1", "1e400", "NaN", "", "0x10", "١٢٣"))
        headers["X-Slack-Request-Timestamp"] = ts
        headers["X-Slack-Signature"] = sign(signing, ts, body) if rng.random() < 0.8 else "v0=0"
    return path, headers, body, what


def requests(
    seed: int, n: int, token: str, signing: str, large: float = 0.002
) -> Iterator[tuple[str, dict[str, str], bytes, str]]:
    rng = random.Random(seed)
    for _ in range(n):
        yield request(rng, token, signing, large)


def corpus(token: str, signing: str) -> list[tuple[str, dict[str, str], bytes, str]]:
    """One of each family the issue found, named: a regression list, not a sample."""
    auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    ndjson = {**auth, "Content-Type": "application/x-ndjson"}
    good = b'{"name":"cpu","value":1.0,"time":' + TS + b',"labels":{"host":"a"}}'
    huge_label = (
        b'{"name":"cpu","value":1,"time":' + TS + b',"labels":{"big":"' + b"y" * 1_500_000 + b'"}}'
    )
    out = [
        ("/v1/metrics", auth, b'{"name":"cpu","value":NaN,"time":' + TS + b"}", "NaN token"),
        ("/v1/metrics", auth, b'{"name":"cpu","value":Infinity,"time":' + TS + b"}", "Infinity"),
        ("/v1/metrics", auth, b'{"name":"cpu","value":1e400,"time":' + TS + b"}", "1e400"),
        (
            "/v1/metrics",
            auth,
            b'{"name":"cpu","value":' + b"9" * 400 + b',"time":' + TS + b"}",
            "400-digit number",
        ),
        ("/v1/metrics", auth, b'{"name":"\xff\xfe","value":1,"time":' + TS + b"}", "bad UTF-8"),
        ("/v1/metrics", auth, b'{"name":"\\ud800","value":1,"time":' + TS + b"}", "lone surrogate"),
        ("/v1/metrics", auth, b'{"name":"cpu","value":1,"time":"2999-01-01T00:00:00Z"}', "2999"),
        (
            "/v1/metrics",
            auth,
            b"[" + b",".join([b'{"v":1}'] * 200_000) + b"]",
            "200,000 invalid items",
        ),
        (
            "/v1/metrics",
            auth,
            b'{"name":"cpu","value":1,"time":'
            + TS
            + b',"labels":{"big":"'
            + b"x" * 900_000
            + b'"}}',
            "900 KB label",
        ),
        ("/v1/metrics", auth, b"{" + b"x" * 800_000, "800 KB invalid body"),
        (
            "/v1/metrics",
            ndjson,
            b"\n".join([good] * 3 + [huge_label]),
            "NDJSON with a 1.5 MB label",
        ),
        (
            "/v1/alertmanager",
            auth,
            b'{"version":"4","status":"firing","alerts":[{"status":'
            b'"firing","labels":{"alertname":"x"},"annotations":{"summary":"'
            + b"s" * 900_000
            + b'"},"startsAt":'
            + TS
            + b"}]}",
            "900 KB annotation",
        ),
        (
            "/v2/enqueue",
            auth,
            b'{"routing_key":"RKEY","event_action":"trigger","payload":'
            b'{"summary":"x","source":"y","severity":"critical","custom_details":'
            + nested(600, random.Random(1))
            + b"}}",
            "PagerDuty deep custom_details",
        ),
    ]
    for depth in (255, 256, 300, 512, 1000, 1023, 1024, 1025, 1100):
        for path in ("/v1/metrics", "/v1/logs", "/v1/alertmanager", "/v2/enqueue"):
            out.append((path, auth, nested(depth, random.Random(depth)), f"nesting {depth}"))
    form = urllib.parse.urlencode(
        {"command": "/incident", "text": "snooze 99999999999d", "user_id": "U_SRE", "team_id": "T1"}
    ).encode()
    ts = str(int(time.time()))
    slack = {"Content-Type": "application/x-www-form-urlencoded"}
    out.append(
        (
            "/slack/commands",
            {**slack, "X-Slack-Request-Timestamp": "9" * 400, "X-Slack-Signature": "v0=0"},
            form,
            "400-nines timestamp",
        )
    )
    out.append(
        (
            "/slack/commands",
            {
                **slack,
                "X-Slack-Request-Timestamp": ts,
                "X-Slack-Signature": sign(signing, ts, form),
            },
            form,
            "snooze 99999999999d",
        )
    )
    out.append(
        (
            "/v1/metrics",
            {**auth, "Content-Encoding": "gzip"},
            gzip.compress(b"\0" * (64 << 20), 9),
            "gzip bomb",
        )
    )
    out.append(("/v1/metrics", {**auth, "Content-Encoding": "gzip"}, good, "not gzip"))
    out.append(
        (
            "/v1/metrics",
            {**auth, "Content-Type": "application/json; charset=utf-16"},
            good.decode().encode("utf-16"),
            "UTF-16 body",
        )
    )
    return out

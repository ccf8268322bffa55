"""The `incident-work` record formats, written by the router and read by `decide`.

A value is a JSON header, a newline, then a body:
- alerts, version 2 (`{"t":"alerts","v":2}`): the body is one JSON array of
  `[group id, group key, route, alert fields]`, the alert's fields as the router's validated
  Alert holds them. `decide` rebuilds the Alert from those fields without validating
  it again: the router validated it, only the router writes `incident-work`, and the
  bundle already carried the router's routing decision on the same trust. One
  orjson pass over the whole bundle instead of one pydantic validation per alert;
- alerts, version 1 (`{"t":"alerts","items":[{"gk","route","n"}]}`): the original
  records' bytes back to back, `n` bytes each, validated again when read. No longer
  written, still read, so a bundle written by an older router during an upgrade is
  decided too;
- commands and receipts (`{"t":"command"}`, `{"t":"receipt"}`): the original record;
- a value without a newline is the oldest single-JSON form
  (`{"t": ..., "alert": "<json text>"}`) and is still read.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
from pydantic import BaseModel

from processors.incidents.ledger import adopt, group_id
from schemas import Alert
from schemas.alerts import AnomalyDetail

TICK = b'{"t":"tick"}'
_ALERTS_V2 = orjson.dumps({"t": "alerts", "v": 2}) + b"\n"
# Alert's datetime fields: JSON text in the bundle, datetimes again when rebuilt
# (tests/unit/incidents/test_bundle.py checks this list against the model)
ALERT_TIMES = (
    "produced_at",
    "starts_at",
    "pending_since",
    "ends_at",
    "window_start",
    "window_end",
)
# (table key, header, the alert rebuilt, or the bytes of a record still to validate)
Item = tuple[bytes, dict[str, Any], Alert | bytes]


def work_value(kind: str, raw: bytes, **header: Any) -> bytes:
    """An `incident-work` value: the header, a newline, the original record."""
    return orjson.dumps({"t": kind, **header}) + b"\n" + raw


def read_work(value: bytes) -> tuple[dict[str, Any], bytes]:
    """(header, body) of an `incident-work` value (every form)."""
    head, sep, body = value.partition(b"\n")
    msg: dict[str, Any] = orjson.loads(head)
    if sep:
        return msg, body
    legacy = msg.get("alert") or msg.get("cmd") or msg.get("receipt") or ""
    return msg, legacy.encode()


def _fields(obj: object) -> dict[str, Any]:
    if isinstance(obj, BaseModel):
        return obj.__dict__  # every field, validated: the nested AnomalyDetail too
    raise TypeError(f"{type(obj).__name__} in an alert bundle")


def alert_bundle(items: Sequence[tuple[str, str, dict[str, Any], Alert]]) -> bytes:
    """Version 2: routed alerts of one `incident-work` partition, as
    (group id, group key, route, validated alert)."""
    rows = [(gid, gk, route, alert.__dict__) for gid, gk, route, alert in items]
    return _ALERTS_V2 + orjson.dumps(rows, default=_fields)  # (_fields: an AnomalyDetail)


# a bundle record's value, at most: well under the topic's max.message.bytes (1 MB by
# default) whatever the alerts; chunks aim at BUNDLE_BYTES and are cut in half when
# their encoding is still beyond MAX_BUNDLE
BUNDLE_BYTES = 256 * 1024
MAX_BUNDLE = 512 * 1024
ROW_BYTES = 1024  # a row's JSON beyond the alert's record and its group key


def alert_bundles(items: Sequence[tuple[str, str, dict[str, Any], Alert, int]],
                  target: int = BUNDLE_BYTES, limit: int = MAX_BUNDLE,
                  ) -> list[tuple[bytes, bytes]]:  # fmt: skip
    """(key, version 2 value) records for the routed alerts of one partition, as (group
    id, group key, route, alert, size of its record), each value at most `limit` bytes
    (an alert alone is far smaller: its schema bounds every field). The alerts keep
    their order across the records."""
    out: list[tuple[bytes, bytes]] = []
    chunk: list[tuple[str, str, dict[str, Any], Alert]] = []
    size = 0
    for gid, gk, route, alert, n in items:
        chunk.append((gid, gk, route, alert))
        size += n + len(gk) + ROW_BYTES
        if size >= target:
            _split(chunk, limit, out)
            chunk, size = [], 0
    if chunk:
        _split(chunk, limit, out)
    return out


def _split(chunk: list[tuple[str, str, dict[str, Any], Alert]], limit: int,
           out: list[tuple[bytes, bytes]]) -> None:  # fmt: skip
    value = alert_bundle(chunk)
    if len(value) <= limit or len(chunk) == 1:
        out.append((chunk[0][0].encode(), value))
        return
    half = len(chunk) // 2
    _split(chunk[:half], limit, out)
    _split(chunk[half:], limit, out)


def trusted_alert(doc: dict[str, Any]) -> Alert:
    """The Alert the router validated, from the fields it put in the bundle."""
    parse = datetime.fromisoformat
    for name in ALERT_TIMES:
        text = doc.get(name)
        if text is not None:
            doc[name] = parse(text)
    anomaly = doc.get("anomaly")
    if anomaly is not None:
        doc["anomaly"] = adopt(AnomalyDetail, anomaly)
    return adopt(Alert, doc)


def items(key: bytes, value: bytes) -> list[Item]:
    """The events of one `incident-work` record, in order (a bundle holds many)."""
    msg, body = read_work(value)
    if msg["t"] != "alerts":
        return [(key, msg, body)]
    out: list[Item] = []
    if msg.get("v") == 2:
        for gid, gk, route, doc in orjson.loads(body):
            head = {"t": "alert", "gk": gk, "route": route}
            out.append((gid.encode(), head, trusted_alert(doc)))
        return out
    at = 0
    for item in msg["items"]:
        n, gk = item["n"], item["gk"]
        head = {"t": "alert", "gk": gk, "route": item["route"]}
        out.append((group_id(gk).encode(), head, body[at : at + n]))
        at += n
    return out

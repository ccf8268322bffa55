"""Constrained field types shared by every event model.

Bounds exist to protect downstream consumers: a label set with 10,000 keys or
a 5 MB summary string is a bug or an attack, and must be refused at the edge
rather than discovered in a Slack message or in a state store.

- labels per series or alert: 64 (``MAX_LABELS``; Mimir allows 30, Loki 15 per stream);
- label name: 128 characters, ``[a-zA-Z_][a-zA-Z0-9_.-]*`` (Mimir: 1024);
- label value: 1024 characters (``MAX_LABEL_VALUE``; Mimir and Loki: 2048);
- names (metric, rule, annotation key, source, unit): 256 characters;
- text (summary, annotation value, log message): 8192 characters (``MAX_TEXT``);
- annotations per alert: 32 (``MAX_ANNOTATIONS``);
- any string of an event: 65536 characters (``Event``'s ``str_max_length``);
- sample and log time, checked by the gateway against its clock: at most 5 minutes
  ahead (``MAX_AHEAD``, the processor's default ``max_future_skew``) and at most
  7 days behind (``MAX_BEHIND``); Loki's defaults are 10 minutes and 7 days.

An event within these bounds encodes to at most a few hundred kilobytes, except an
alert whose every annotation is at its bound in characters that JSON escapes: the
gateway measures each record it writes and refuses one over Kafka's record limit with
a 4xx naming its largest field.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, Field, StringConstraints

MAX_LABELS = 64
MAX_LABEL_VALUE = 1024
MAX_TEXT = 8192
MAX_ANNOTATIONS = 32
MAX_AHEAD = timedelta(minutes=5)
MAX_BEHIND = timedelta(days=7)

FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
"""A float that is never NaN or +-inf: those poison every aggregate they touch."""

MAX_MAGNITUDE = 1e300


def _measurable(value: float) -> float:
    # pydantic's own le/ge would print the bound as a 301-digit integer
    if abs(value) > MAX_MAGNITUDE:
        raise ValueError(f"{value:g} is beyond ±1e300: an overflow upstream, not a measurement")
    return value


Measurement = Annotated[
    float,
    Field(allow_inf_nan=False,
          json_schema_extra={"minimum": -MAX_MAGNITUDE, "maximum": MAX_MAGNITUDE}),
    AfterValidator(_measurable),
]  # fmt: skip
NonNegativeMeasurement = Annotated[
    float,
    Field(allow_inf_nan=False, ge=0, json_schema_extra={"maximum": MAX_MAGNITUDE}),
    AfterValidator(_measurable),
]
"""A measured value: finite, and far enough from the float limit that sums, rates and
sketches over a window of them stay finite (a value near 1.8e308 is an overflow or
garbage upstream, not a measurement, and a quantile of it overflowed in the sketch)."""

Timestamp = AwareDatetime
"""Timezone-aware instants only: a naive timestamp is ambiguous across hosts."""

Name = Annotated[str, StringConstraints(min_length=1, max_length=256, strip_whitespace=True)]
ShortText = Annotated[str, StringConstraints(max_length=1024)]
Text = Annotated[str, StringConstraints(max_length=MAX_TEXT)]
# the patterns and bounds are public: the gateway's remote-write fast path checks a
# series with them once instead of building a model per sample
METRIC_NAME_PATTERN = r"^[a-zA-Z_:][a-zA-Z0-9_:.\-]*$"
MAX_METRIC_NAME = 256
MetricName = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_METRIC_NAME, pattern=METRIC_NAME_PATTERN)
]
Tenant = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_\-]*$")
]
Fingerprint = Annotated[str, StringConstraints(min_length=1, max_length=128)]

LABEL_KEY_PATTERN = r"^[a-zA-Z_][a-zA-Z0-9_.\-]*$"
MAX_LABEL_KEY = 128
LabelKey = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_LABEL_KEY, pattern=LABEL_KEY_PATTERN)
]
LabelValue = Annotated[str, StringConstraints(max_length=MAX_LABEL_VALUE)]


def _bounded_labels(value: dict[str, str]) -> dict[str, str]:
    if len(value) > MAX_LABELS:
        raise ValueError(f"at most {MAX_LABELS} labels are allowed, got {len(value)}")
    return value


Labels = Annotated[dict[LabelKey, LabelValue], AfterValidator(_bounded_labels)]
"""Label sets: bounded in count, key syntax and value length."""


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_UNIT_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_ISO = re.compile(r"-?P(?:\d+(?:[.,]\d+)?[YMWD])*(?:T(?:\d+(?:[.,]\d+)?[HMS])+)?")
_WRITE_AS = "write a duration like 30s, 10m or 1h30m (units ms, s, m, h, d, w)"


def parse_duration(value: object) -> object:
    """Prometheus-style durations ("30s", "5m", "1h30m", "500ms"); numbers (seconds),
    timedeltas and ISO 8601 ("PT5M") pass on to pydantic. Anything else is refused with
    the expected format, which pydantic's own message ("valid timedelta") does not name."""
    if isinstance(value, (int, float, timedelta)) and not isinstance(value, bool):
        return value
    if not isinstance(value, str):
        raise ValueError(f"a {type(value).__name__} is not a duration: {_WRITE_AS}")
    text = value.strip()
    if len(text) > 2 and _ISO.fullmatch(text):
        return value
    pos, total = 0, 0.0
    for match in _DURATION.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNIT_S[match.group(2)]
        pos = match.end()
    if pos != len(text) or pos == 0:
        raise ValueError(f"{value[:64]!r} is not a duration: {_WRITE_AS}")
    return timedelta(seconds=total)


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
"""A timedelta written as "30s", "5m", "1h" (or seconds as a number, or ISO 8601)."""

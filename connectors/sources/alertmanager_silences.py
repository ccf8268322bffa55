"""Alertmanager's silences and matchers (OpenAPI v2) to and from tocsin's SilenceSpec.

- ``decode_postable_silence``: a ``postableSilence`` body into a SilenceSpec (and the id
  of the silence it replaces, when it names one), with Alertmanager's own checks (start
  before end, end not in the past, a valid regex) and errors that name the field;
- ``parse_filter``: one ``filter`` query value (``alertname="Foo"``, ``job=~"a.*"``,
  ``{env!="dev"}``) into a Matcher, as amtool and Grafana send them;
- ``matchers_json``: a SilenceSpec's matchers in the API's shape.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from schemas.codec import describe_validation_error
from schemas.commands import Matcher, SilenceSpec
from schemas.errors import DecodeError

_MODEL = "PostableSilence"
MAX_SILENCE_BODY = 256 * 1024
_FILTER = re.compile(r"^\s*\{?\s*([a-zA-Z_][a-zA-Z0-9_.\-]*)\s*(=~|!~|!=|=)\s*(.*?)\s*,?\s*\}?\s*$",
                     re.DOTALL)  # fmt: skip
_OPS = {(False, True): "=", (False, False): "!=", (True, True): "=~", (True, False): "!~"}


class _APIMatcher(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str = Field(min_length=1)
    value: str
    isRegex: bool
    isEqual: bool = True


class _PostableSilence(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str | None = None
    matchers: list[_APIMatcher] = Field(min_length=1, max_length=32)
    startsAt: datetime
    endsAt: datetime
    createdBy: str
    comment: str = ""


def decode_postable_silence(data: bytes, now: datetime) -> tuple[SilenceSpec, str | None]:
    """The silence to create and the id of the silence it replaces (None: a new one)."""
    if len(data) > MAX_SILENCE_BODY:
        raise DecodeError(f"a silence is at most {MAX_SILENCE_BODY} bytes", reason="too_large",
                          model=_MODEL)  # fmt: skip
    try:
        posted = _PostableSilence.model_validate_json(data)
    except ValidationError as exc:
        kinds = {e["type"] for e in exc.errors(include_url=False)}
        reason = "invalid_json" if "json_invalid" in kinds else "validation"
        raise DecodeError(describe_validation_error(_MODEL, exc), reason=reason,
                          model=_MODEL) from exc  # fmt: skip
    for i, m in enumerate(posted.matchers):
        if m.isRegex:
            try:
                re.compile(m.value)
            except re.error as exc:
                raise DecodeError(f"{_MODEL}.matchers.{i}.value: invalid regular expression "
                                  f"{m.value!r:.80}: {exc}", reason="validation",
                                  model=_MODEL) from None  # fmt: skip
    for name in ("startsAt", "endsAt"):
        if getattr(posted, name).tzinfo is None:
            raise DecodeError(f"{_MODEL}.{name}: a date with a time zone is required (RFC 3339)",
                              reason="validation", model=_MODEL)  # fmt: skip
    if posted.endsAt <= posted.startsAt:
        raise DecodeError(f"{_MODEL}.endsAt: start time must be before end time",
                          reason="validation", model=_MODEL)  # fmt: skip
    if posted.endsAt < now:
        raise DecodeError(f"{_MODEL}.endsAt: end time can't be in the past",
                          reason="validation", model=_MODEL)  # fmt: skip
    fields: dict[str, Any] = {
        "matchers": [
            {"label": m.name, "op": _OPS[(m.isRegex, m.isEqual)], "value": m.value}
            for m in posted.matchers
        ],
        "starts_at": posted.startsAt,
        "ends_at": posted.endsAt,
        "author": posted.createdBy,
        "comment": posted.comment,
    }
    try:
        spec = SilenceSpec.model_validate(fields)
    except ValidationError as exc:
        raise DecodeError(describe_validation_error("SilenceSpec", exc), reason="validation",
                          model=_MODEL) from exc  # fmt: skip
    return spec, posted.id or None


def parse_filter(text: str) -> Matcher:
    """One matcher in Prometheus' syntax; ValueError naming what is wrong."""
    found = _FILTER.match(text)
    if found is None:
        raise ValueError(f'filter: {text!r:.120} is not a matcher such as alertname="Foo"')
    name, op, raw = found.groups()
    value = _unquote(raw) if raw.startswith('"') else raw
    if op in ("=~", "!~"):
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"filter: invalid regular expression {value!r:.80}: {exc}") from None
    try:
        return Matcher(label=name, op=op, value=value)
    except ValidationError as exc:
        raise ValueError(f"filter: {describe_validation_error('Matcher', exc)}") from None


def _unquote(raw: str) -> str:
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ValueError(f"filter: {raw!r:.120} is not a properly quoted value") from None
    if not isinstance(value, str):
        raise ValueError(f"filter: {raw!r:.120} is not a quoted string")
    return value


def matchers_json(spec: SilenceSpec) -> list[dict[str, Any]]:
    return [{"name": m.label, "value": m.value, "isRegex": m.op in ("=~", "!~"),
             "isEqual": m.op in ("=", "=~")} for m in spec.matchers]  # fmt: skip

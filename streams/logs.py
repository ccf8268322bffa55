"""structlog, configured once per process: JSON lines in production, readable on a TTY."""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from collections.abc import Callable, Hashable, MutableMapping
from typing import Any, TextIO

import orjson
import structlog

from streams.settings import RDKAFKA_LOG, LogSettings

# A key names a secret when one of its words (split at _ - . and camelCase) is one of
# these, or ends in one ("accesstoken"), or is "key" after one of KEY_OWNERS ("api_key",
# "routingKey"). Words that only qualify a secret ("token_count", "secret_name") do not.
SECRET_WORDS = ("token", "tokens", "secret", "secrets", "password", "passwords", "passwd",
                "passphrase", "authorization", "signing", "signature", "signatures",
                "cookie", "cookies", "credential", "credentials", "apikey", "bearer")  # fmt: skip
KEY_OWNERS = frozenset({"api", "private", "signing", "access", "secret", "routing",
                        "integration", "service", "encryption", "client", "master"})  # fmt: skip
QUALIFIERS = frozenset({"id", "ids", "count", "counts", "n", "num", "len", "length", "size",
                        "total", "name", "names", "kind", "type", "file", "path", "env",
                        "source", "ttl", "age", "expires", "expiry", "set", "configured",
                        "present", "enabled", "missing"})  # fmt: skip
_WORDS = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")

# Values that are secrets wherever they appear: the secret part is replaced, the rest of
# the text (an error message, a URL) kept.
_CONTEXT_KEYS = (r"routing_key|integration_key|service_key|api_?key|access_token|"
                 r"client_secret|signing_secret|password|passwd|secret|token")  # fmt: skip
_SECRET_TEXT = re.compile(
    r"\b(?P<slack>xox[a-z]|xapp)-[A-Za-z0-9-]+"  # Slack bot/user/app/refresh tokens
    r"|(?P<scheme>\b(?:[Bb]earer|BEARER) +)[A-Za-z0-9._~+/-]{8,}=*"  # Authorization headers
    r"|(?P<basic>\b(?:Basic|BASIC) +)[A-Za-z0-9+/]{16,}=*"
    r"|(?<=://)(?P<user>[^/\s:@]*):[^/\s@]+(?=@)"  # user:password@ in a URL
    r"|(?P<hook>hooks\.slack\.com/(?:services|workflows|triggers)/)[^\s\"'<>]+"  # webhooks
    r"|\bR0[0-9A-Z]{30}\b"  # PagerDuty Event Orchestration routing keys
    rf"|(?i:(?P<named>(?<![A-Za-z0-9_])(?:{_CONTEXT_KEYS})[\"']?\s*[:=]\s*[\"']?))"
    r"[^\s\"',;&}]+"  # name=value or "name": "value" in a text (a query, a JSON body)
)
MASK = "***"
DEPTH = 4  # nested dicts and lists looked into


def secret_key(key: str) -> bool:
    words = [w.lower() for w in _WORDS.findall(key)]
    if not words or words[-1] in QUALIFIERS:
        return False
    for i, w in enumerate(words):
        if w.endswith(SECRET_WORDS) or (w == "key" and i and words[i - 1] in KEY_OWNERS):
            return True
    return False


_HIDDEN: dict[str, str] = {}  # short texts repeat (kinds, channels, targets): each once


def hide(text: str) -> str:
    """The text with every secret-looking value in it masked, the rest kept."""
    if len(text) < 8:
        return text
    if len(text) > 128:
        return _hide(text)
    hit = _HIDDEN.get(text)
    if hit is None:
        if len(_HIDDEN) > 4096:
            _HIDDEN.clear()
        hit = _HIDDEN[text] = _hide(text)
    return hit


def _hide(text: str) -> str:
    low = text.lower()
    # every text _SECRET_TEXT can match holds one of these, and most texts none of them
    if ("key" in low or "token" in low or "://" in low or "xox" in low or "secret" in low
            or "passw" in low or "bearer" in low or "basic" in low or "r0" in low
            or "xapp" in low or "hooks.slack" in low):  # fmt: skip
        return _SECRET_TEXT.sub(_mask, text)
    return text


def _mask(m: re.Match[str]) -> str:
    if m["slack"]:  # its kind kept: xoxb-*** says which token leaked
        return f"{m['slack']}-{MASK}"
    if m["user"] is not None:
        return f"{m['user']}:{MASK}"
    kept = m["scheme"] or m["basic"] or m["hook"] or m["named"] or ""
    return kept + MASK


_SECRET_KEYS: dict[str, bool] = {}  # key -> names a secret (log keys are a small set)


def _is_secret_key(key: Any) -> bool:
    if not isinstance(key, str):
        return False
    secret = _SECRET_KEYS.get(key)
    if secret is None:
        if len(_SECRET_KEYS) > 4096:
            _SECRET_KEYS.clear()
        secret = _SECRET_KEYS[key] = secret_key(key)
    return secret


def _clean(key: Any, value: Any, depth: int) -> Any:
    """The value to log under this key: a secret masked, anything else as it was (a
    number, a flag or None is never a secret, whatever its key is called)."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if _is_secret_key(key):
        return MASK
    if isinstance(value, str):
        return hide(value)
    if isinstance(value, BaseException):  # rendered by its repr: cleaned as that text
        return hide(repr(value))
    if depth >= DEPTH:
        return value
    if isinstance(value, dict):  # a copy: the caller's dict stays as it was
        return {k: _clean(k, v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_clean(None, v, depth + 1) for v in value)
    return value


def _redact_secrets(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Last line of defence: a secret never reaches a log line, and nothing else is lost.
    Runs after the exception is formatted, so a traceback is cleaned too."""
    for key, value in event.items():
        if value.__class__ is str:  # the usual value, inline: one look-up when it is plain
            cleaned = hide(value) if _SECRET_KEYS.get(key) is False else _clean(key, value, 0)
        elif value is None or value.__class__ in _PLAIN:
            continue
        else:
            cleaned = _clean(key, value, 0)
        if cleaned is not value:
            event[key] = cleaned  # a value replaced, not a key added: iterating stays valid
    return event


_PLAIN = frozenset({int, float, bool})


def _dumps(event: Any, **kw: Any) -> str:
    """orjson (about a third of a JSON log line's cost with the stdlib's encoder), and the
    stdlib's where orjson refuses a value (an int past 64 bits)."""
    try:
        return orjson.dumps(
            event, default=kw.get("default"), option=orjson.OPT_NON_STR_KEYS
        ).decode()
    except TypeError:
        return json.dumps(event, **kw)


def configure_logging(settings: LogSettings | None = None, file: TextIO | None = None) -> None:
    """Every line to stderr, or to `file` (the demo keeps its terminal for the story)."""
    settings = settings or LogSettings()
    level = getattr(logging, settings.level.upper())
    tty = (file or sys.stderr).isatty()
    as_json = settings.format == "json" or (settings.format == "auto" and not tty)
    renderer: Any = (
        structlog.processors.JSONRenderer(serializer=_dumps)
        if as_json
        else structlog.dev.ConsoleRenderer(colors=tty)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            _redact_secrets,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=file or sys.stderr),
        # a module's logger follows the configuration in force when it logs, not the one
        # of its first line: workers log a few lines a second, and a process that
        # configures logging again (an embedding program, a test) is then obeyed
        cache_logger_on_first_use=False,
    )
    # the client libraries' lines (librdkafka's through `KafkaSettings.client_config`,
    # aiokafka's, faust's) as the same JSON objects, secrets masked, so a log pipeline
    # parses every line a worker writes
    handler = _Stderr() if file is None else logging.StreamHandler(file)
    handler.set_name(_HANDLER)
    # a client library logs each failed reconnect, several a second while Kafka is away
    handler.addFilter(RepeatFilter())
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                structlog.stdlib.add_log_level,
                structlog.stdlib.add_logger_name,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
            ],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                _redact_secrets,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER]:
        root.removeHandler(old)  # configured again: one handler, the new configuration's
    root.addHandler(handler)
    root.setLevel(max(level, logging.WARNING))


_HANDLER = "tocsin"


class Throttle:
    """One of each kind per `every_s`: `held_back(kind)` is None for one to keep quiet,
    else how many of its kind were kept quiet since the last one let through, and how
    many seconds ago that was."""

    def __init__(self, every_s: float = 30.0, clock: Callable[[], float] = time.monotonic):
        self._every_s, self._clock = every_s, clock
        self._seen: dict[Hashable, tuple[float, int]] = {}  # -> (let through at, held)

    def held_back(self, kind: Hashable) -> tuple[int, float] | None:
        now = self._clock()
        at, held = self._seen.get(kind, (float("-inf"), 0))
        if now - at < self._every_s:
            if len(self._seen) < 10_000:  # kinds are few; never let a flood of them grow it
                self._seen[kind] = (at, held + 1)
            return None
        self._seen[kind] = (now, 0)
        return held, now - at


class RepeatFilter(logging.Filter):
    """Lets one line of each kind (logger and message template) through per `every_s`;
    the next one says how many were held back. aiokafka logs every failed reconnect,
    fetch and coordinator lookup, ten times a second while the broker is away."""

    def __init__(self, every_s: float = 30.0, clock: Callable[[], float] = time.monotonic):
        super().__init__()
        self._throttle = Throttle(every_s, clock)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        # librdkafka's lines share one template; their facility (FAIL, ERROR, ...) is the kind
        args = record.args
        kind = (
            args[0] if record.name == RDKAFKA_LOG.name and isinstance(args, tuple) and args else ""
        )
        let = self._throttle.held_back((record.name, f"{record.msg}{kind}"))
        if let is None:
            return False
        held, since = let
        if held:
            record.msg = f"{record.msg} ({held} more like this in the last {since:.0f}s)"
        return True


def stdlib_handlers() -> list[logging.Handler]:
    """The handler `configure_logging` gave the standard library's loggers (none before
    it ran), for a framework that installs its own (faust's worker)."""
    return [h for h in logging.getLogger().handlers if h.get_name() == _HANDLER]


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stderr` is when a line is logged, never to one replaced
    and closed since (a test's capture, an embedding program's redirect)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _: Any) -> None:
        pass


def bind_event(event_id: str) -> Any:
    """Bind ``event_id`` for every log line emitted while processing one event."""
    return structlog.contextvars.bound_contextvars(event_id=event_id)

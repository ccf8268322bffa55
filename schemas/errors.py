"""The one exception tree of tocsin.

    TocsinError
    ├── ConfigError        a YAML/env configuration is invalid (names file, path, problem)
    ├── DecodeError        bytes from the outside world are not a valid event
    └── BrokerError        the local Kafka broker tool could not do what was asked

Errors are data where input is concerned: consumers turn DecodeError into a
dead-letter record and go on; nothing a source sends may kill a worker loop.
"""

from __future__ import annotations


class TocsinError(Exception):
    """Root of every error tocsin raises on purpose."""


class ConfigError(TocsinError):
    """Configuration is invalid; the message names the file, the path and the problem."""


class BrokerError(TocsinError):
    """The local broker tool failed (Java/Maven missing, start timed out, ...)."""


class DecodeError(TocsinError):
    """Bytes could not be decoded into the expected event model.

    ``reason`` is a short machine-friendly category used as a metrics label
    (``invalid_json``, ``validation``, ``unknown_kind`` ...); the message is
    for humans and names the model, the field and what was expected.
    """

    def __init__(self, message: str, *, reason: str, model: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.model = model

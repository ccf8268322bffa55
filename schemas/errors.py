"""The one exception tree of tocsin: every error it raises on purpose is a TocsinError.

    TocsinError
    ├── ConfigError          a YAML/env configuration is invalid (names file, path, problem)
    ├── DecodeError          bytes from the outside world are not a valid event
    ├── BrokerError          the local Kafka broker tool could not do what was asked
    │   └── StateNotLoaded   a notifier partition's state not read to its end in time
    ├── IncompatibleState    a rule-engine checkpoint of another version   (processors.rules)
    ├── BodyError            a request body unusable as a whole       (connectors.sources)
    ├── ActionError          a Slack button or slash command that is no command
    ├── SignatureError       a request not signed by Slack, stale or replayed
    │                                                                   (connectors.slack)
    ├── _Unmapped            a Checkmk notification tocsin cannot map (connectors.sources)
    ├── SnsError             an SNS message unsigned, forged, foreign or not AWS's
    │                                                          (connectors.sources.sns)
    ├── KafkaAccessError     the cluster refused the credentials or TLS (streams)
    ├── Backpressure         Kafka cannot take more now: retry after a pause
    ├── NotAcknowledged      Kafka did not acknowledge a write in time
    ├── DecoderLost          a decoding process died under a request  (streams.gateway)
    ├── ApiError             a request the API answers with a 4xx or 503 (streams.api)
    ├── BadCursor            a list cursor this API did not make for that order
                                                                    (streams.store)
    ├── RecordTooLarge       a record over the largest Kafka accepts  (streams.gateway)
    └── ConsumerFenced       the group fenced this consumer: replace it (streams.runtime)

Errors a caller might already catch as ``ValueError`` (IncompatibleState, BodyError,
ActionError, RecordTooLarge) are ``ValueError`` too; ConsumerFenced and StateNotLoaded
are also confluent-kafka ``KafkaException``s. Each class lives next to the code
that raises it, since processors and connectors may import schemas only; this root is
what they share, so ``except TocsinError`` catches everything tocsin means to raise.

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

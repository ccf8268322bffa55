"""Sources: decoders that turn what monitoring tools send into tocsin events.

Every decoder takes bytes and returns validated events, with errors as data: the
batch formats, the Alertmanager webhook and remote-write return an error per invalid
item (ItemError, naming its position and field) beside the valid items, and what makes
the input unusable as a whole raises ``schemas.DecodeError`` (or ``BodyError``). No
other exception escapes, whatever the bytes (tests/unit/connectors/
test_decoders_hostile.py), so an HTTP intake can answer a precise 4xx and a Kafka
ingest worker can dead-letter the record with a reason.
"""

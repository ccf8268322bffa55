"""Sources: decoders that turn what monitoring tools send into tocsin events.

Every decoder takes bytes and returns validated events or raises
``schemas.DecodeError`` whose message names the position (line, item, series)
and the field, so an HTTP intake can answer a precise 4xx and a Kafka ingest
worker can dead-letter the record with a reason.
"""

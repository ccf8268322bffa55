"""The REST API (/api/v1): reads the store, writes Commands to Kafka."""

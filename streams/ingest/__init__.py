"""`tocsin run ingest`: agent formats read from a Kafka topic into `metrics` and `logs`."""

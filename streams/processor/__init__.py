"""The processor runtime: rule engines per input partition, fed from Kafka or a file."""

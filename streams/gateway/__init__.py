"""The HTTP gateway: sources in, Slack responders in, everything onto Kafka."""

"""The incident agents: a faust-streaming app around the pure incident core."""

"""Heartbeats: a dead man's switch per configured name, as a pure state machine."""

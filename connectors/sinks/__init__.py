"""Delivery sinks: where notifications go."""

"""Slack: message rendering, request signatures, responder actions."""

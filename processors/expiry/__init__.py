"""Alerts that resolve by themselves when their sender stops sending them."""

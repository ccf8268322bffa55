"""How a number reads wherever a responder reads it: the console, the CLI."""

from __future__ import annotations


def number(value: float) -> str:
    """837.3, 0.08333, 12,040: four significant digits as Slack shows the same value,
    whole thousands grouped, never a float's full repr (nor 0.1 for an error rate of
    0.0833 against 0.05)."""
    if 1e4 <= abs(value) < 1e15:
        return f"{value:,.0f}"
    return f"{value:.4g}"

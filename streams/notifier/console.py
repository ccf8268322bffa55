"""A sink that prints what it would send: the demo and local runs without a Slack token."""

from __future__ import annotations

import sys
from typing import TextIO

from connectors.sinks.delivery import Delivery
from schemas.notifications import Notification

_ICON = {"critical": "[!!]", "error": "[! ]", "warning": "[ ~]", "info": "[ i]"}


def render(n: Notification) -> str:
    where = f"slack {n.target}" if n.channel == "slack" else f"{n.channel} {n.target}"
    value = ""
    if n.value is not None and n.threshold is not None:
        value = f" ({n.value:.4g} vs {n.threshold:.4g})"
    elif n.anomaly is not None and n.value is not None:
        a = n.anomaly
        value = f" ({n.value:.4g}, {a.expectation() or f'score {a.score:.2f}'}"
        value += f"; {a.rarity})" if a.rarity else ")"
    elif n.anomaly_score is not None:
        value = f" (anomaly score {n.anomaly_score:.2f})"
    return (f"{n.kind:8} -> {where:28} {_ICON[n.severity]} {n.priority} {n.title[:70]}{value}"
            f" [level {n.escalation_level + 1}]")  # fmt: skip


class ConsoleSink:
    def __init__(self, out: TextIO = sys.stdout) -> None:
        self.out = out

    async def deliver(self, n: Notification) -> Delivery:
        print(f"WOULD POST {render(n)}", file=self.out, flush=True)
        return Delivery(ok=True, external_ref="console", status_code=200)

"""The demo's synthetic fleet: a few dozen hosts and services, and a fault timeline.

Deterministic for a seed: the same scenario yields the same samples, so the
short variant in `make test` can assert on exactly what it injected. Event
time is simulated; the runner decides how fast it passes (`--speed`).
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from schemas import LogRecord, MetricSample

SERVICES = {
    "checkout": ["web-01", "web-02", "web-03", "web-04"],
    "search": ["search-01", "search-02", "search-03", "search-04"],
    "auth": ["auth-01", "auth-02", "auth-03"],
    "catalog": ["cat-01", "cat-02", "cat-03"],
    "payments": ["pay-01", "pay-02", "pay-03"],
    "db": ["db-01", "db-02", "db-03"],
    "cache": ["cache-01", "cache-02", "cache-03"],
}


Outcome = Literal["escalated", "acknowledged", "resolved"]


@dataclass(frozen=True, slots=True)
class Fault:
    """One injected incident: what, where, when (minutes of scenario time), and what the
    responders see happen to it."""

    name: str
    kind: str  # cpu | memory | errors | latency | traffic_drop
    target: str  # host for cpu/memory, service otherwise
    start_min: float
    end_min: float
    expect_rule: str  # the rule (or anomaly rule) that must catch it
    # escalated: nobody acknowledges before the level-1 timeout; acknowledged: the
    # responder clicks Acknowledge on the first page; resolved: over before any timeout
    outcome: Outcome

    def active(self, minute: float) -> bool:
        return self.start_min <= minute < self.end_min


# Whole minutes: the fleet starts on a minute boundary, so every fault starts and ends on
# the boundary of every rule window (15 s, 30 s, 1 m panes) and a sliding window never
# holds part of a change: CPU at 94% crosses the warning and the critical threshold in
# the same window, and the alerts' event times are the same on every run. Durations keep
# each incident minutes away from its escalation timeout (5 minutes at level 1), so what
# the demo shows does not depend on how fast the workers are:
# - CPU fires after `for: 5m` at about 7, escalates at about 12, ends at 14;
# - the memory leak fires at about 11 and is acknowledged at once;
# - latency pages at about 7, escalates to level 2 (with the pager) at about 12;
# - the 5xx burst and the traffic collapse are over about 2.5 minutes after they page.
FAULTS: tuple[Fault, ...] = (
    Fault("CPU saturation", "cpu", "web-03", 1, 14, "cpu_saturation_critical", "escalated"),
    Fault("Memory leak", "memory", "db-01", 3, 16, "memory_high", "acknowledged"),
    Fault("Latency degradation", "latency", "search", 5, 16, "api_latency_p95", "escalated"),
    Fault("5xx burst", "errors", "checkout", 6, 8, "http_5xx_error_rate", "resolved"),
    Fault("Traffic collapse", "traffic_drop", "auth", 10, 14, "request_rate_anomaly", "resolved"),
)


@dataclass(frozen=True, slots=True)
class Tick:
    minute: float
    metrics: list[MetricSample]
    logs: list[LogRecord]


class Fleet:
    """Generates every host's metrics and every service's logs, step by step."""

    def __init__(
        self,
        start: datetime,
        step_s: float = 10.0,
        seed: int = 7,
        faults: tuple[Fault, ...] = FAULTS,
        logs_per_step: int = 40,
    ) -> None:
        self.start = start
        self.step_s = step_s
        self.faults = faults
        self.logs_per_step = logs_per_step
        self._rng = random.Random(seed)

    def ticks(self, minutes: float, from_minute: float = 0.0) -> Iterator[Tick]:
        steps = int(minutes * 60 / self.step_s)
        first = int(from_minute * 60 / self.step_s)
        for i in range(first, first + steps):
            minute = i * self.step_s / 60
            yield self.tick(minute)

    def tick(self, minute: float) -> Tick:
        at = self.start + timedelta(minutes=minute)
        metrics: list[MetricSample] = []
        logs: list[LogRecord] = []
        for service, hosts in SERVICES.items():
            for host in hosts:
                labels = {"host": host, "service": service, "dc": "eu-1"}
                metrics += self._host_metrics(minute, at, labels)
            metrics.append(self._request_rate(minute, at, service))
            logs += self._http_logs(minute, at, service, hosts)
        return Tick(minute, metrics, logs)

    def _fault(self, kind: str, target: str, minute: float) -> Fault | None:
        for f in self.faults:
            if f.kind == kind and f.target == target and f.active(minute):
                return f
        return None

    def _host_metrics(
        self, minute: float, at: datetime, labels: dict[str, str]
    ) -> list[MetricSample]:
        r = self._rng
        host = labels["host"]
        cpu = 25 + 15 * math.sin(minute / 7 + len(host)) + r.gauss(0, 3)
        if self._fault("cpu", host, minute):
            cpu = 94 + r.gauss(0, 2)
        mem = 55 + r.gauss(0, 2)
        leak = self._fault("memory", host, minute)
        if leak:
            # ramps to ~96% within 5 minutes and stays there until the fault ends
            mem = min(96.5, 60 + (minute - leak.start_min) * 9) + r.gauss(0, 0.5)
        iowait = max(0.2, 2 + r.gauss(0, 0.6))
        return [
            MetricSample(
                name="cpu_percent", value=_clip(cpu), time=at, labels=labels, unit="percent"
            ),
            MetricSample(
                name="memory_percent", value=_clip(mem), time=at, labels=labels, unit="percent"
            ),
            MetricSample(
                name="disk_iowait_ms", value=round(iowait, 3), time=at, labels=labels, unit="ms"
            ),
        ]

    def _request_rate(self, minute: float, at: datetime, service: str) -> MetricSample:
        # a daily-ish wave the anomaly detector learns; the collapse stays above any
        # static floor a human would set, so only the detector notices it
        base = 220 + 40 * math.sin(minute / 5)
        if self._fault("traffic_drop", service, minute):
            base *= 0.35
        return MetricSample(
            name="http_requests_per_second",
            value=round(base + self._rng.gauss(0, 6), 2),
            time=at,
            labels={"service": service, "dc": "eu-1"},
        )

    def _http_logs(
        self, minute: float, at: datetime, service: str, hosts: list[str]
    ) -> list[LogRecord]:
        r = self._rng
        error_p = 0.12 if self._fault("errors", service, minute) else 0.005
        slow = self._fault("latency", service, minute) is not None
        out: list[LogRecord] = []
        for i in range(self.logs_per_step):
            host = hosts[i % len(hosts)]
            status = 503 if r.random() < error_p else (404 if r.random() < 0.01 else 200)
            duration = r.lognormvariate(math.log(480 if slow else 60), 0.35)
            out.append(
                LogRecord(
                    time=at + timedelta(milliseconds=i * 1000 * self.step_s / self.logs_per_step),
                    message=f"GET /api/{service} {status}",
                    labels={"service": service, "host": host, "dc": "eu-1"},
                    http_status=status,
                    duration_ms=round(duration, 1),
                    source=host,
                )
            )
        return out


def _clip(v: float) -> float:
    return round(min(100.0, max(0.0, v)), 2)

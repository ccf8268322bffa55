"""The demo's closing report: each incident's timeline, the story against the fault plan,
what the notifier delivered (and what it only printed), and MTTA/MTTR.

Every time is scenario time (`mm:ss` from the start of the fault plan), the clock the
fault plan is written in; the agents' wall-clock instants are converted by the speed.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from statistics import mean

from schemas import Alert, DeliveryReceipt, IncidentEvent, Notification
from streams.demo.timescale import ScenarioClock, mmss
from streams.demo.workload import Fault, Outcome

Echo = Callable[[str], None]
HOST_FAULTS = ("cpu", "memory")


def about(fault: Fault, labels: dict[str, str]) -> bool:
    """Whether an alert with these labels is about this fault: a host fault's alerts name
    its host; a service fault's alerts name its service and no host."""
    if fault.kind in HOST_FAULTS:
        return labels.get("host") == fault.target
    return labels.get("service") == fault.target and "host" not in labels


@dataclass
class Incident:
    incident_id: str
    title: str
    opened_at: datetime
    alert: Alert | None  # the alert that opened it
    events: list[IncidentEvent] = field(default_factory=list)
    paged: bool = False  # somebody got a first page

    @property
    def rule(self) -> str:
        return self.alert.rule if self.alert else "?"

    def first(self, kind: str) -> datetime | None:
        return next((e.at for e in self.events if e.kind == kind), None)

    @property
    def inhibited_by(self) -> str | None:
        msg = next((e.message for e in self.events if e.kind == "inhibited"), None)
        return msg.removeprefix("inhibited by ").split(" ", 1)[0] if msg else None

    @property
    def outcome(self) -> Outcome | None:
        if self.first("acknowledged"):
            return "acknowledged"
        if self.first("escalated"):
            return "escalated"
        return "resolved" if self.first("resolved") else None


def incidents(ledger: Iterable[IncidentEvent], alerts: dict[str, Alert],
              pages: Iterable[Notification]) -> list[Incident]:  # fmt: skip
    """The ledger folded per incident; `alerts` by fingerprint."""
    by_id: dict[str, list[IncidentEvent]] = defaultdict(list)
    for e in ledger:
        by_id[e.incident_id].append(e)
    paged = {n.incident_id for n in pages if n.kind == "trigger"}
    out = []
    for iid, evs in by_id.items():
        evs.sort(key=lambda e: e.seq)
        opened = next((e for e in evs if e.kind == "opened"), evs[0])
        fp = str(opened.details.get("fingerprint", ""))
        out.append(Incident(iid, opened.message, opened.at, alerts.get(fp), evs, iid in paged))
    return sorted(out, key=lambda i: (i.opened_at, i.incident_id))


@dataclass
class Observed:
    """What the demo saw: the incidents, every firing alert, the alerts the agents
    suppressed (fingerprint -> reason, from their log), the notifier's receipts."""

    incidents: list[Incident]
    fired: list[Alert]
    suppressed: dict[str, str]
    receipts: list[DeliveryReceipt]


@dataclass(frozen=True)
class Channels:
    """Where deliveries went, for the reader: a fake Slack, PagerDuty without a key."""

    slack_fake: bool
    pagerduty_keyless: bool
    notifier_log: str
    slack_calls: str = ""  # what the fake Slack was asked, when it ran


def report(echo: Echo, clock: ScenarioClock, faults: Iterable[Fault], seen: Observed,
           channels: Channels) -> list[str]:  # fmt: skip
    """Print the report; return what differs from the fault plan (empty: as planned)."""
    _timelines(echo, clock, seen.incidents)
    problems = _story(echo, clock, faults, seen)
    _deliveries(echo, seen.receipts, channels)
    _mtta_mttr(echo, clock, seen)
    return problems


def _timelines(echo: Echo, clock: ScenarioClock, incs: list[Incident]) -> None:
    echo("\n=== incident timelines (scenario time) ===")
    for inc in incs:
        echo(f"\n{inc.incident_id}: {inc.title}")
        for e in inc.events:
            echo(f"  {mmss(clock.of_wall(e.at))}  {e.kind:14} {e.message[:90]}")


def _story(echo: Echo, clock: ScenarioClock, faults: Iterable[Fault],
           seen: Observed) -> list[str]:  # fmt: skip
    echo("\n=== the story, against the fault plan ===")
    problems: list[str] = []
    claimed: set[str] = set()
    opened_by = {i.alert.fingerprint for i in seen.incidents if i.alert is not None}
    for f in faults:
        mine = [i for i in seen.incidents if i.alert is not None and about(f, i.alert.labels)]
        claimed.update(i.incident_id for i in mine)
        paging = [i for i in mine if i.paged]
        head = f"  {mmss(f.start_min * 60)}-{mmss(f.end_min * 60)}  {f.name} on {f.target}:"
        main = next((i for i in paging if i.rule == f.expect_rule), None)
        if main is None:
            problems.append(f"{f.name}: {f.expect_rule} paged nobody")
            echo(f"{head} {f.expect_rule} paged nobody  (NOT AS PLANNED)")
            continue
        said = [f"{main.rule} paged"]
        if ack := main.first("acknowledged"):
            said.append(f"acknowledged after {mmss(clock.span(ack - main.opened_at))}")
        if esc := main.first("escalated"):
            said.append(f"escalated at {mmss(clock.of_wall(esc))}")
        res = main.first("resolved")
        said.append(f"resolved at {mmss(clock.of_wall(res))}" if res else "still open")
        for other in mine:
            if other is not main:
                how = (f"inhibited by {other.inhibited_by}, paged nobody"
                       if other.inhibited_by and not other.paged else
                       "paged too" if other.paged else "paged nobody")  # fmt: skip
                said.append(f"{other.rule} {how}")
        for a in seen.fired:
            if about(f, a.labels) and a.fingerprint not in opened_by:
                why = seen.suppressed.get(a.fingerprint, "suppressed").split(" (", 1)[0]
                said.append(f"{a.rule} {why}: no incident, paged nobody")
        wrong = []
        if len(paging) != 1:
            wrong.append(f"{len(paging)} incidents paged, planned 1")
        if main.outcome != f.outcome:
            wrong.append(f"{main.outcome or 'still open'}, planned {f.outcome}")
        problems += [f"{f.name}: {w}" for w in wrong]
        verdict = "as planned" if not wrong else "NOT AS PLANNED: " + "; ".join(wrong)
        echo(f"{head} {', '.join(said)}  ({verdict})")
    for inc in seen.incidents:
        if inc.incident_id not in claimed and inc.paged:
            problems.append(f"unplanned page: {inc.title}")
            echo(f"  unplanned: {inc.title} paged  (NOT AS PLANNED)")
    return problems


def _deliveries(echo: Echo, receipts: list[DeliveryReceipt], channels: Channels) -> None:
    delivered = [r for r in receipts if r.outcome == "delivered"]
    failed = len(receipts) - len(delivered)
    echo(f"\nnotifier: {len(delivered)} deliveries, {failed} failed or retried attempts "
         f"(log: {channels.notifier_log})")  # fmt: skip
    by_channel = Counter(r.channel for r in delivered)
    printed = Counter(r.channel for r in delivered if r.external_ref == "console")
    for channel, n in sorted(by_channel.items()):
        if channel.startswith("slack") and channels.slack_fake:
            how = "to the demo's local fake Slack (no SLACK_BOT_TOKEN), not to a workspace"
        elif printed[channel] == n:
            how = "printed to the notifier's log, NOT sent"
            if channel == "pagerduty" and channels.pagerduty_keyless:
                how += ": no PAGERDUTY_ROUTING_KEYS is configured"
        else:
            how = "sent"
        echo(f"  {channel}: {n} {how}")
    if channels.slack_calls:
        echo(f"  fake Slack was asked: {channels.slack_calls}")


def _mtta_mttr(echo: Echo, clock: ScenarioClock, seen: Observed) -> None:
    incs = seen.incidents
    acked = [clock.span(a - i.opened_at) for i in incs if (a := i.first("acknowledged"))]
    resolved = [clock.span(r - i.opened_at) for i in incs if (r := i.first("resolved"))]
    paged = sum(i.paged for i in incs)
    quiet = sum(not i.paged for i in incs) + sum(
        a.fingerprint in seen.suppressed for a in seen.fired
    )
    echo(f"\n{len(incs)} incidents, {paged} paged somebody, {len(resolved)} resolved; "
         f"{quiet} alert(s) inhibited or silenced paged nobody")  # fmt: skip
    echo(f"MTTA {mmss(mean(acked)) if acked else '-'} over {len(acked)} acknowledged "
         f"incident(s); MTTR {mmss(mean(resolved)) if resolved else '-'} over all "
         f"{len(resolved)} resolved incidents (scenario time; the wall clock ran "
         f"{clock.speed:g}x faster)")  # fmt: skip

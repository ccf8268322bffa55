"""Block Kit messages for incidents. Every piece of text that comes from labels or
payloads is escaped, so an alert label can never post `<!channel>` or a fake link."""

from __future__ import annotations

from typing import Any

from schemas.notifications import Notification

_ICON = {"critical": ":red_circle:", "error": ":large_orange_circle:",
         "warning": ":large_yellow_circle:", "info": ":large_blue_circle:"}  # fmt: skip
_VERB = {"trigger": "paged", "escalate": "escalated", "update": "updated",
         "resolve": "resolved", "reminder": "reminder", "flapping": "flapping"}  # fmt: skip
_STATUS = {"triggered": "Triggered", "acknowledged": "Acknowledged", "resolved": "Resolved"}


# Block Kit's bounds: a text longer is refused with `invalid_blocks`, and the page with it
SECTION_TEXT = 3000
FIELD_TEXT = 2000


def escape(text: str) -> str:
    """Slack mrkdwn control characters: &, < and > (Slack's documented escaping)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clip(text: str, limit: int) -> str:
    """At most `limit` characters: cut with an ellipsis, never inside an escaped
    character (labels and titles can be long enough for Slack to refuse the message)."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    amp = cut.rfind("&", len(cut) - 5)
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut + "\u2026"


def link(url: str) -> str:
    """A URL safe inside ``<url|text>``: none of ``< > |`` (or spaces) can end it early."""
    for ch, code in (("<", "%3C"), (">", "%3E"), ("|", "%7C"), (" ", "%20")):
        url = url.replace(ch, code)
    return url


def headline(n: Notification) -> str:
    icon = ":white_check_mark:" if n.status == "resolved" else _ICON[n.severity]
    return clip(f"{icon} [{n.priority}] {state(n)}: {escape(n.title)}",
                SECTION_TEXT - 2)  # fmt: skip


def state(n: Notification) -> str:
    """What the message tells its reader first. An escalation or a reminder reaches
    people by a new message each (a DM, a phone's notification), and the incident is
    still just triggered: without saying why it came, it reads as the first page again."""
    if n.status == "resolved":
        return "Resolved"
    if n.kind == "escalate":
        return f"Escalated to level {n.escalation_level + 1}"
    if n.kind == "reminder" and n.status == "triggered":
        return "Still not acknowledged"
    if n.kind == "flapping":
        return f"Flapping, {_STATUS[n.status].lower()}"
    return _STATUS[n.status]


def blocks(n: Notification) -> list[dict[str, Any]]:
    fields = [f"*Severity*\n{n.severity}", f"*Service*\n{escape(n.service or '-')}"]
    if n.value is not None and n.threshold is not None:
        fields.append(f"*Value*\n{n.value:.4g} (threshold {n.threshold:.4g})")
    elif n.anomaly is not None:
        fields.append(f"*Anomaly*\n{escape(anomaly_text(n))}")
    elif n.anomaly_score is not None:
        value = f"{n.value:.4g}, " if n.value is not None else ""
        fields.append(f"*Anomaly*\n{value}score {n.anomaly_score:.2f}")
    fields.append(f"*On call*\n{escape(n.assignee or '-')} (level {n.escalation_level + 1})")
    labels = ", ".join(f"{escape(k)}={escape(v)}" for k, v in sorted(n.labels.items()))
    out: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*{headline(n)}*"}},
        {"type": "section",
         "fields": [{"type": "mrkdwn", "text": clip(f, FIELD_TEXT)} for f in fields]},
        {"type": "context", "elements": [
            {"type": "mrkdwn", "text": clip(labels, SECTION_TEXT) or "no labels"}]},
    ]  # fmt: skip
    if n.anomaly is not None and n.anomaly.sparkline():
        line = f"`{n.anomaly.sparkline()}` {n.anomaly.hours()}"
        out.append({"type": "context", "elements": [{"type": "mrkdwn", "text": line}]})
    if n.summary:
        out.append(
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": clip(escape(n.summary), SECTION_TEXT)},
            }
        )
    if n.storm is not None:
        out.append({"type": "section", "text": {"type": "mrkdwn", "text": storm_text(n)}})
    if n.runbook_url and n.runbook_url.startswith(("https://", "http://")):
        out.append(
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": f"<{link(n.runbook_url)}|Runbook>"},
            }
        )
    if n.status != "resolved":
        out.append({"type": "actions", "block_id": f"incident:{n.incident_id}", "elements": [
            _button("Acknowledge", "ack", n.incident_id, style="primary"),
            _button("Resolve", "resolve", n.incident_id),
            _button("Escalate", "escalate", n.incident_id, style="danger"),
            _button("Snooze 1h", "snooze", n.incident_id),
        ]})  # fmt: skip
    return out


def anomaly_text(n: Notification) -> str:
    """The value against what the series usually does, how rare it is, and which series
    of the group it is, e.g. "73.2 (expected 41.2, usual 30.1 to 52.3)", "rarer than
    once a month for this series" and "rps{instance=a,service=api}" on the next lines."""
    a = n.anomaly
    if a is None:
        return ""
    head = f"{n.value:.4g}" if n.value is not None else ""
    if a.expectation():
        head = f"{head} ({a.expectation()})" if head else a.expectation()
    return "\n".join(p for p in (head, a.rarity, a.series) if p)


def storm_text(n: Notification) -> str:
    """The storm digest: how many alerts were summarised, and their commonest labels."""
    d = n.storm
    if d is None:
        return ""
    lines = [f":cyclone: *{escape(d.line())}*"]
    for key, tally in list(d.by_label.items())[:6]:
        top = sorted(tally.values.items(), key=lambda kv: -kv[1])[:5]
        shown = ", ".join(f"{escape(v) or '(empty)'} x{c:,}" for v, c in top)
        if tally.other:
            shown += f", other x{tally.other:,}"
        lines.append(f"`{escape(key)}`: {shown}")
    return clip("\n".join(lines), SECTION_TEXT)


def _button(text: str, action: str, incident_id: str, style: str | None = None
            ) -> dict[str, Any]:  # fmt: skip
    b: dict[str, Any] = {"type": "button", "text": {"type": "plain_text", "text": text},
                         "action_id": f"tocsin_{action}", "value": incident_id}  # fmt: skip
    if style:
        b["style"] = style
    return b


def timeline_line(n: Notification) -> str:
    what = _VERB[n.kind]
    return clip(f"{what}: {escape(n.title)}", SECTION_TEXT) + (
        f" ({n.status}, level {n.escalation_level + 1})"
    )

"""A page as HTML (no JavaScript: everything is in the markup), JSON and an Atom feed."""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import groupby
from pathlib import Path
from xml.sax.saxutils import escape

import jinja2

from schemas.status import STATE_NAMES, PageView

HERE = Path(__file__).parent
UPDATE_NAMES = {"investigating": "Investigating", "identified": "Identified",
                "monitoring": "Monitoring", "resolved": "Resolved"}  # fmt: skip
OVERALL = {"operational": "All systems operational", "degraded": "Degraded performance",
           "partial_outage": "Partial outage", "major_outage": "Major outage",
           "maintenance": "Maintenance in progress"}  # fmt: skip
FEED_ENTRIES = 50
_env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
                          undefined=jinja2.StrictUndefined, trim_blocks=True,
                          lstrip_blocks=True)  # fmt: skip


def _when(at: datetime | None) -> str:
    return "" if at is None else at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


_env.filters["when"] = _when


def html(view: PageView, base: str) -> str:
    groups = [(g, list(cs)) for g, cs in groupby(view.components, key=lambda c: c.group)]
    return _env.get_template("page.html").render(
        view=view, base=base, groups=groups, names=STATE_NAMES, statuses=UPDATE_NAMES,
        overall=OVERALL[view.state], history={h.id: h for h in view.history},
    )  # fmt: skip


def atom(view: PageView, url: str) -> str:
    """The page's updates and maintenance, newest first, as an Atom feed."""
    entries: list[tuple[datetime, str, str, str]] = []  # (at, id, title, text)
    for story in [*view.active, *view.past]:
        for u in story.updates:
            entries.append((u.at, f"update:{u.update_id}",
                            f"{story.title}: {UPDATE_NAMES[u.status]}", u.message))  # fmt: skip
    for m in view.maintenance:
        text = f"{_when(m.starts_at)} to {_when(m.ends_at)}: {m.message}".rstrip(": ")
        entries.append(
            (
                m.starts_at if m.state != "scheduled" else view.generated_at,
                f"maintenance:{m.maintenance_id}",
                f"Maintenance: {m.title}",
                text,
            )
        )
    entries.sort(key=lambda e: e[0], reverse=True)
    entries = entries[:FEED_ENTRIES]
    updated = entries[0][0] if entries else view.generated_at
    feed_id = f"tag:tocsin,status:{view.tenant}/{view.page}"
    out = ['<?xml version="1.0" encoding="utf-8"?>',
           '<feed xmlns="http://www.w3.org/2005/Atom">',
           f"<id>{escape(feed_id)}</id>", f"<title>{escape(view.title)}</title>",
           f"<updated>{updated.isoformat()}</updated>",
           f'<link rel="alternate" href="{escape(url)}"/>',
           f"<author><name>{escape(view.title)}</name></author>"]  # fmt: skip
    for at, eid, title, text in entries:
        out += ["<entry>", f"<id>{escape(feed_id)}/{escape(eid)}</id>",
                f"<title>{escape(title)}</title>", f"<updated>{at.isoformat()}</updated>",
                f'<link rel="alternate" href="{escape(url)}"/>',
                f'<content type="text">{escape(text)}</content>', "</entry>"]  # fmt: skip
    out.append("</feed>")
    return "\n".join(out) + "\n"

"""A page's HTML and Atom feed: what responders wrote is escaped, never markup."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

from schemas.status import (
    ComponentHistory,
    ComponentView,
    IncidentStory,
    MaintenanceView,
    PageView,
    UpdateView,
)
from streams.status import render

NOW = datetime(2026, 5, 20, 12, 0, tzinfo=UTC)
EVIL = '<script>alert("x")</script> & <b>bold</b>'
ATOM = "{http://www.w3.org/2005/Atom}"


def _view() -> PageView:
    update = UpdateView(update_id="u1", status="identified", message=EVIL, at=NOW)
    story = IncidentStory(incident_id="i1", title=EVIL, status="open", opened_at=NOW,
                          resolved_at=None, components=["Shop"], updates=[update])  # fmt: skip
    return PageView(
        tenant="acme", page="public", audience="public", title="Acme <status>",
        state="degraded", generated_at=NOW,
        components=[ComponentView(id="shop", name="Shop", group="", description="",
                                  state="degraded")],
        active=[story],
        maintenance=[MaintenanceView(maintenance_id="m1", title="DB upgrade", message=EVIL,
                                     components=["Shop"], starts_at=NOW + timedelta(days=1),
                                     ends_at=NOW + timedelta(days=1, hours=1),
                                     state="scheduled")],
        history=[ComponentHistory(id="shop", name="Shop", uptime=1.0, days=[])], past=[],
    )  # fmt: skip


def test_html_escapes_what_responders_wrote_and_has_no_script() -> None:
    html = render.html(_view(), "/status/acme/public")
    assert "<script" not in html and "<b>bold" not in html
    assert "&lt;script&gt;" in html
    assert "DB upgrade" in html and "Scheduled" in html


def test_the_feed_is_atom_with_one_entry_per_update_and_maintenance() -> None:
    feed = ET.fromstring(render.atom(_view(), "https://status.example/status/acme/public"))
    assert feed.tag == f"{ATOM}feed"
    entries = feed.findall(f"{ATOM}entry")
    assert len(entries) == 2
    texts = [e.findtext(f"{ATOM}content") for e in entries]
    assert any(EVIL in (t or "") for t in texts), "the text, unescaped once parsed"
    assert all(e.findtext(f"{ATOM}id") for e in entries)

"""Any page the schemas admit renders to a message Slack accepts: texts within Block
Kit's bounds whatever the title, labels, summary or anomaly detail (the fake Slack
refuses what Slack refuses, so a page beyond them would never be shown)."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.slack.render import blocks, headline, timeline_line
from schemas import Notification
from schemas.alerts import AnomalyDetail
from schemas.types import MAX_LABEL_VALUE, MAX_LABELS, MAX_TEXT
from streams.demo.fake_slack import refused_by_slack

T0 = datetime(2026, 1, 1, tzinfo=UTC)
# what escaping lengthens, what Slack would parse, and plain text, in long runs
chars = st.sampled_from(["&", "<", ">", "a", "*", "`", "\n", "é", "|"])


def text(max_size: int) -> st.SearchStrategy[str]:
    return st.one_of(
        st.text(chars, max_size=max_size),
        st.builds(lambda c, n: c * n, chars, st.integers(0, max_size)),
    )


label_keys = st.from_regex(r"[a-z_][a-z0-9_]{0,20}", fullmatch=True)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    title=text(MAX_TEXT),
    summary=text(MAX_TEXT),
    labels=st.dictionaries(label_keys, text(MAX_LABEL_VALUE), max_size=MAX_LABELS),
    rarity=text(1024),
    series=text(1024),
    anomaly=st.booleans(),
    status=st.sampled_from(["triggered", "acknowledged", "resolved"]),
)
def test_every_page_fits_slacks_bounds(
    title: str, summary: str, labels: dict[str, str], rarity: str, series: str,
    anomaly: bool, status: str,
) -> None:  # fmt: skip
    n = Notification(
        notification_id="inc-1/trigger/C1", incident_id="inc-1", kind="trigger",
        channel="slack", target="C1", title=title, status=status,  # type: ignore[arg-type]
        severity="critical", priority="P1", service="checkout", labels=labels,
        summary=summary, opened_at=T0, at=T0,
        value=1.0 if anomaly else None,
        anomaly=AnomalyDetail(score=0.9, expected=2.0, lower=1.5, upper=2.5,
                              rarity=rarity, series=series) if anomaly else None,
    )  # fmt: skip
    assert refused_by_slack({"text": headline(n), "blocks": blocks(n)}) is None
    assert refused_by_slack({"text": timeline_line(n)}) is None

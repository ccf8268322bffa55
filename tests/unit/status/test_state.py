"""A component's state from open incidents, maintenance and overrides; its 90-day
history from incident durations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from processors.status import Affecting, Window, history, state_of
from schemas.commands import Matcher
from schemas.status import Component, default_priority_states

NOW = datetime(2026, 5, 20, 12, 0, tzinfo=UTC)
BY_PRIORITY = {str(k): v for k, v in default_priority_states().items()}
API = Component(id="api", name="API", services=["checkout"],
                matchers=[Matcher(label="region", value="eu")])  # fmt: skip
WEB = Component(id="web", name="Website", services=["web"])


def inc(priority: str, service: str = "checkout", opened: timedelta = timedelta(hours=1),
        resolved: timedelta | None = None, region: str = "eu",
        named: frozenset[str] = frozenset()) -> Affecting:  # fmt: skip
    return Affecting(
        f"i-{priority}-{service}",
        service,
        {"region": region},
        priority,
        NOW - opened,
        NOW - resolved if resolved is not None else None,
        named,
    )


def state(c: Component, *incs: Affecting, windows: tuple[Window, ...] = (),
          overrides: dict[str, str] | None = None) -> str:  # fmt: skip
    return state_of(c, list(incs), list(windows), overrides or {}, BY_PRIORITY, NOW)  # type: ignore[arg-type]


def test_no_incident_is_operational() -> None:
    assert state(API) == "operational"


def test_priority_maps_to_state_and_the_worst_open_incident_wins() -> None:
    assert state(API, inc("P3")) == "degraded"
    assert state(API, inc("P2")) == "partial_outage"
    assert state(API, inc("P1")) == "major_outage"
    assert state(API, inc("P3"), inc("P1"), inc("P2")) == "major_outage"


def test_a_resolved_incident_no_longer_counts() -> None:
    assert state(API, inc("P1", resolved=timedelta(minutes=5))) == "operational"


def test_an_incident_of_another_service_or_unmatched_labels_does_not_count() -> None:
    assert state(API, inc("P1", service="web")) == "operational"
    assert state(API, inc("P1", region="us")) == "operational"
    assert state(WEB, inc("P2", service="web")) == "partial_outage"


def test_a_component_named_by_an_update_counts_whatever_the_service() -> None:
    assert state(WEB, inc("P2", named=frozenset({"web"}))) == "partial_outage"


def test_maintenance_in_progress_shows_and_scheduled_maintenance_does_not() -> None:
    now_on = Window(frozenset({"api"}), NOW - timedelta(minutes=5), NOW + timedelta(hours=1))
    later = Window(frozenset({"api"}), NOW + timedelta(hours=1), NOW + timedelta(hours=2))
    assert state(API, windows=(now_on,)) == "maintenance"
    assert state(API, windows=(later,)) == "operational"
    assert state(WEB, windows=(now_on,)) == "operational"


def test_an_override_wins_until_cleared() -> None:
    assert state(API, inc("P1"), overrides={"api": "degraded"}) == "degraded"
    assert state(API, overrides={"api": "major_outage"}) == "major_outage"
    assert state(API, inc("P1"), overrides={}) == "major_outage"


def test_history_has_ninety_days_and_counts_outage_time_once() -> None:
    two_hours_ago = inc("P1", opened=timedelta(hours=2), resolved=timedelta(hours=1))
    overlapping = inc("P2", opened=timedelta(hours=1, minutes=30), resolved=timedelta(minutes=30))
    uptime, days = history(API, [two_hours_ago, overlapping], BY_PRIORITY, NOW)
    assert len(days) == 90
    assert days[-1].day == NOW.date()
    assert days[-1].state == "major_outage"
    # 10:00-11:00 and 10:30-11:30 together: 90 minutes down of the 12 hours of today
    assert days[-1].down_s == 90 * 60
    assert round(days[-1].uptime, 4) == round(1 - 90 / 720, 4)
    assert all(d.state == "operational" and d.down_s == 0 for d in days[:-1])
    assert 0.99 < uptime < 1.0


def test_a_degraded_incident_colours_the_day_but_is_no_downtime() -> None:
    _, days = history(API, [inc("P3", opened=timedelta(hours=3))], BY_PRIORITY, NOW)
    assert days[-1].state == "degraded"
    assert days[-1].down_s == 0


def test_an_incident_across_midnight_counts_on_both_days() -> None:
    across = inc("P1", opened=timedelta(hours=14), resolved=timedelta(hours=11))
    _, days = history(API, [across], BY_PRIORITY, NOW)
    assert days[-2].down_s == 2 * 3600 and days[-1].down_s == 3600

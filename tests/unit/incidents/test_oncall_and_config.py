"""On-call schedules across DST and overrides; config validation with precise errors."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from processors.incidents.oncall import next_handoffs, on_call
from schemas import ConfigError
from schemas.config import Layer, Override, Schedule, load_config

BERLIN = ZoneInfo("Europe/Berlin")


def daily(users: list[str], tz: str = "Europe/Berlin", handoff: time = time(9)) -> Schedule:
    return Schedule(id="s", timezone=tz,
                    layers=[Layer(users=users, length=timedelta(days=1), handoff=handoff,
                                  start=date(2026, 3, 27))])  # fmt: skip


def test_handoff_stays_at_local_nine_across_the_spring_dst_change() -> None:
    s = daily(["ann", "ben", "cat"])
    # 2026-03-29 clocks go 02:00 -> 03:00 in Berlin: 09:00 local is 07:00 UTC, not 08:00
    before = datetime(2026, 3, 29, 8, 59, tzinfo=BERLIN)
    after = datetime(2026, 3, 29, 9, 0, tzinfo=BERLIN)
    assert on_call(s, before) == "ben"
    assert on_call(s, after) == "cat"
    assert on_call(s, datetime(2026, 3, 29, 7, 0, tzinfo=UTC)) == "cat"
    assert on_call(s, datetime(2026, 3, 29, 6, 59, tzinfo=UTC)) == "ben"


def test_handoff_stays_at_local_nine_across_the_autumn_dst_change() -> None:
    s = Schedule(id="s", timezone="Europe/Berlin",
                 layers=[Layer(users=["ann", "ben"], length=timedelta(days=1),
                               start=date(2026, 10, 24))])  # fmt: skip
    # 2026-10-25 is 25 hours long in Berlin; the handoff is still 09:00 local (08:00 UTC)
    assert on_call(s, datetime(2026, 10, 25, 7, 59, tzinfo=UTC)) == "ann"
    assert on_call(s, datetime(2026, 10, 25, 8, 0, tzinfo=UTC)) == "ben"


def test_next_handoffs_are_exact_instants_across_dst_and_around_a_short_override() -> None:
    s = Schedule(
        id="s", timezone="Europe/Berlin",
        layers=[Layer(users=["ann", "ben"], length=timedelta(days=7), handoff=time(9),
                      start=date(2026, 3, 16))],
        overrides=[Override(user="olga", start=datetime(2026, 3, 24, 12, 7, tzinfo=UTC),
                            end=datetime(2026, 3, 24, 12, 17, tzinfo=UTC))],
    )  # fmt: skip
    asked = datetime(2026, 3, 24, 11, 41, 23, tzinfo=UTC)  # not on any grid
    assert next_handoffs(s, asked, count=4) == [
        (datetime(2026, 3, 24, 12, 7, tzinfo=UTC), "olga"),  # a 10-minute override
        (datetime(2026, 3, 24, 12, 17, tzinfo=UTC), "ben"),
        (datetime(2026, 3, 30, 7, 0, tzinfo=UTC), "ann"),  # 09:00 CEST, after the change
        (datetime(2026, 4, 6, 7, 0, tzinfo=UTC), "ben"),
    ]
    winter = next_handoffs(s, datetime(2026, 3, 17, 20, 19, 35, tzinfo=UTC), count=1)
    assert winter == [(datetime(2026, 3, 23, 8, 0, tzinfo=UTC), "ben")]  # 09:00 CET


def test_hour_rotations_hand_off_when_next_handoffs_says_across_dst() -> None:
    # a 90-minute rotation turns in elapsed time; the listed handoffs after the spring
    # change were an hour late (local wall-clock arithmetic), so the on-call page and
    # `tocsin oncall` named the wrong instant
    s = Schedule(id="s", timezone="Europe/Berlin",
                 layers=[Layer(users=["ann", "ann", "ben"], length=timedelta(minutes=90),
                               handoff=time(0), start=date(2025, 1, 1))])  # fmt: skip
    asked = datetime(2025, 3, 30, 0, 0, tzinfo=UTC)
    handoffs = next_handoffs(s, asked, count=4)
    assert handoffs[:2] == [
        (datetime(2025, 3, 30, 0, 30, tzinfo=UTC), "ben"),
        (datetime(2025, 3, 30, 2, 0, tzinfo=UTC), "ann"),
    ]
    before = asked
    for when, who in handoffs:
        assert on_call(s, when) == who
        assert on_call(s, when - timedelta(seconds=1)) != who
        assert on_call(s, before + (when - before) / 2) == on_call(s, before)
        before = when


def test_weekly_rotation_and_overrides_and_layers() -> None:
    s = Schedule(
        id="s", timezone="America/New_York",
        layers=[Layer(users=["ann", "ben"], length=timedelta(days=7), start=date(2026, 1, 5)),
                Layer(users=["night"], length=timedelta(days=1), handoff=time(22),
                      start=date(2026, 6, 1))],
        overrides=[Override(user="olga", start=datetime(2026, 1, 14, tzinfo=UTC),
                            end=datetime(2026, 1, 15, tzinfo=UTC))],
    )  # fmt: skip
    assert on_call(s, datetime(2026, 1, 6, 12, tzinfo=UTC)) == "ann"
    assert on_call(s, datetime(2026, 1, 13, 15, tzinfo=UTC)) == "ben"
    assert on_call(s, datetime(2026, 1, 14, 12, tzinfo=UTC)) == "olga"
    assert on_call(s, datetime(2026, 1, 20, 15, tzinfo=UTC)) == "ann"
    assert on_call(s, datetime(2026, 7, 1, 12, tzinfo=UTC)) == "night", "higher layer wins"
    assert on_call(s, datetime(2026, 1, 1, tzinfo=UTC)) is None, "before any rotation starts"


def test_example_config_is_valid() -> None:
    cfg = load_config([Path("examples/config")])
    assert {s.id for s in cfg.services} >= {"checkout", "search", "auth", "db"}


@pytest.mark.parametrize(
    ("yaml", "message"),
    [
        ("users: [{id: a, name: A}]\nschedules: [{id: s, layers: [{users: [ghost], "
         "start: 2026-01-01}]}]", "schedules[0] (s).layers[0]: unknown user 'ghost'"),
        ("escalation_policies: [{id: p, levels: []}]",
         "escalation_policies[0].levels: List should have at least 1 item"),
        ("users: [{id: a, name: A}]\nschedules: [{id: s, layers: [{users: [a], start: "
         "2026-01-01}], overrides: [{user: a, start: 2026-01-01T00:00:00Z, end: "
         "2026-01-03T00:00:00Z}, {user: a, start: 2026-01-02T00:00:00Z, end: "
         "2026-01-04T00:00:00Z}]}]", "overlaps"),
        ("route: {routes: [{matchers: [{label: env, value: prod}, {label: env, value: dev}]}]}",
         "never matches"),
        ("schedules: [{id: s, timezone: Mars/Olympus, layers: [{users: [a], start: 2026-01-01}]}]",
         "unknown IANA time zone"),
    ],
)  # fmt: skip
def test_config_errors_name_file_path_and_problem(tmp_path: Path, yaml: str, message: str) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(yaml)
    with pytest.raises(ConfigError) as err:
        load_config([f])
    assert str(f) in str(err.value)
    assert message in str(err.value)


def test_errors_name_the_file_an_item_came_from_and_its_index_there(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("users: [{id: ann, name: Ann}]\n")
    (tmp_path / "b.yaml").write_text(
        "users: [{id: bob, name: Bob}]\nteams: [{id: t, members: [ann]}, {id: u, members: [zed]}]\n"
    )
    with pytest.raises(ConfigError) as err:
        load_config([tmp_path])
    assert str(err.value) == f"{tmp_path / 'b.yaml'}: teams[1] (u): unknown user 'zed'"


def test_a_route_after_a_catch_all_sibling_never_matches(tmp_path: Path) -> None:
    path = tmp_path / "routes.yaml"
    path.write_text("route: {routes: [{team: x}, {matchers: [{label: a, value: b}]}]}\n")
    with pytest.raises(ConfigError, match=r"routes\.yaml: route: routes\[1\]: never matches"):
        load_config([path])

"""Heartbeats as the on-call engineer sees them: silence past the interval opens one
alert, the next ping resolves it, and deciding the same input again (a replay after a
crash) emits the same ids; the config check names what is wrong."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from processors.heartbeats.watch import HeartbeatState, deadline, on_ping, on_tick
from schemas import Alert, ConfigError
from schemas.config import Heartbeat, load_config
from schemas.heartbeats import HeartbeatPing, heartbeat_key
from streams.agents.decide import Work, partition_of
from streams.agents.heartbeats import TICK, HeartbeatWatch
from streams.catalog import Catalog
from streams.settings import KafkaSettings

T0 = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
BACKUP = Heartbeat(name="nightly-backup", interval=timedelta(days=1), grace=timedelta(hours=1),
                   labels={"service": "db"}, severity="critical")  # fmt: skip


def test_silence_past_interval_and_grace_fires_once_and_the_next_ping_resolves() -> None:
    s = HeartbeatState(tenant="default", name="nightly-backup")
    assert on_tick(s, T0 + timedelta(days=30), BACKUP) == ([], True), "never pinged: not armed"
    assert on_ping(s, T0, BACKUP, T0) == []
    assert on_tick(s, T0 + timedelta(days=1, minutes=59), BACKUP)[0] == [], "within grace"
    [fired], keep = on_tick(s, T0 + timedelta(days=1, hours=1, seconds=3), BACKUP)
    assert keep and fired.status == "firing" and fired.severity == "critical"
    assert fired.starts_at == T0 + timedelta(days=1, hours=1), "missed at the deadline"
    assert fired.labels == {"service": "db", "alertname": "nightly-backup",
                            "heartbeat": "nightly-backup"}  # fmt: skip
    assert "no ping since 2026-03-01T02:00:00+00:00 (expected every 1d)" in fired.summary
    assert on_tick(s, T0 + timedelta(days=3), BACKUP)[0] == [], "one alert, however long"
    back = T0 + timedelta(days=3, minutes=5)
    [resolved] = on_ping(s, back, BACKUP, back)
    assert resolved.status == "resolved" and resolved.ends_at == back
    assert resolved.fingerprint == fired.fingerprint == "heartbeat:nightly-backup"
    assert deadline(s, BACKUP) == back + timedelta(days=1, hours=1), "armed again"


def test_a_ping_older_than_the_last_changes_nothing() -> None:
    s = HeartbeatState(tenant="default", name="nightly-backup")
    on_ping(s, T0, BACKUP, T0)
    assert on_ping(s, T0 - timedelta(hours=2), BACKUP, T0) == []
    assert s.last_ping == T0


def test_a_heartbeat_removed_from_the_config_resolves_and_is_forgotten() -> None:
    s = HeartbeatState(tenant="default", name="nightly-backup")
    on_ping(s, T0, BACKUP, T0)
    on_tick(s, T0 + timedelta(days=2), BACKUP)
    [resolved], keep = on_tick(s, T0 + timedelta(days=2, minutes=1), None)
    assert resolved.status == "resolved" and not keep


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["ping", "tick"]), st.integers(0, 3 * 86400)),
                max_size=30))  # fmt: skip
def test_replaying_any_input_emits_the_same_alert_ids_and_alternates(
    steps: list[tuple[str, int]],
) -> None:
    def run() -> list[Alert]:
        s = HeartbeatState(tenant="default", name="nightly-backup")
        out: list[Alert] = []
        now = T0
        for kind, offset in steps:
            now = max(now, T0 + timedelta(seconds=offset))
            if kind == "ping":
                out += on_ping(s, now, BACKUP, now)
            else:
                out += on_tick(s, now, BACKUP)[0]
        return out

    first, again = run(), run()
    assert [a.event_id for a in first] == [a.event_id for a in again]
    statuses = [a.status for a in first]
    assert all(a != b for a, b in itertools.pairwise(statuses)), statuses
    assert not statuses or statuses[0] == "firing"


def _catalog() -> Catalog:
    return Catalog(KafkaSettings(topic_prefix="t.", partitions=4))


def _ping_work(name: str, at: datetime, offset: int, partition: int | None = None) -> Work:
    key = heartbeat_key("default", name)
    value = HeartbeatPing(name=name, produced_at=at).model_dump_json().encode()
    return Work(key, value, partition_of(key, 4) if partition is None else partition, offset)


def test_the_agent_step_skips_replays_forwards_misplaced_pings_and_dead_letters_strangers(
    tmp_path: Path,
) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"heartbeats": [{"name": "nightly-backup",
                                                    "interval": "1d"}]}))  # fmt: skip
    watch = HeartbeatWatch(load_config([path]), _catalog())
    table: dict[bytes, bytes | None] = {}
    first = _ping_work("nightly-backup", T0, offset=7)
    out = watch.decide([first], table, T0)
    [(key, part, value)] = out.writes
    table[key] = value
    assert orjson.loads(value or b"")["input_offset"] == 7
    assert watch.decide([first], table, T0).writes == [], "a replay: nothing new"
    elsewhere = _ping_work("nightly-backup", T0, offset=3, partition=(part + 1) % 4)
    moved = watch.decide([elsewhere], table, T0)
    assert moved.sends == [("t.heartbeats", key, elsewhere.value, part)] and not moved.writes
    stranger = watch.decide([_ping_work("who", T0, offset=8)], table, T0)
    [(topic, _, letter, _)] = stranger.sends
    assert topic == "t.deadletter" and b"not a heartbeat of the config" in letter
    late = T0 + timedelta(days=1, seconds=1)
    assert watch.due(table.items(), late) == [key]
    assert watch.due(table.items(), late) == [], "one tick per deadline"
    fired = watch.decide([Work(key, TICK, part, 8)], table, late)
    [(topic, fp, alert, _)] = fired.sends
    assert topic == "t.alerts" and fp == b"heartbeat:nightly-backup" and b'"firing"' in alert


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"name": "Backup", "interval": "1d"}, "heartbeats[0].name"),
        ({"name": "b", "interval": "tomorrow"}, "heartbeats[0].interval"),
        ({"name": "b", "interval": "0s"}, "heartbeats[0].interval"),
        ({"name": "b", "interval": "1m", "labels": {"alertname": "x"}}, "alertname"),
        ({"name": "b", "interval": "1m", "alert": [{"label": "a", "op": "=~", "value": "("}]},
         "bad regex"),
        ({"name": "b", "interval": "1m", "alert": [{"label": "a", "op": "!=", "value": "x"}]},
         "at least one = or =~ matcher"),
        ({"name": "b", "interval": "1m", "every": "1m"}, "heartbeats[0].every"),
    ],
)  # fmt: skip
def test_config_check_names_a_bad_heartbeat(
    tmp_path: Path, entry: dict[str, object], message: str
) -> None:
    path = tmp_path / "hb.yaml"
    path.write_text(yaml.safe_dump({"heartbeats": [entry]}))
    with pytest.raises(ConfigError) as err:
        load_config([path])
    assert message in str(err.value) and "hb.yaml" in str(err.value), str(err.value)

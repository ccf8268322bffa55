"""The projector's bulk statements store exactly what SQLAlchemy's own inserts store, on
SQLite and PostgreSQL: the same values read back, the same stored text for instants and
JSON (so rows written either way compare and sort together), a conflict left alone or
replaced as asked."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import Engine, select

from streams.store import bulk
from streams.store.tables import incidents, silences, timeline

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def _event(seq: int, at: datetime, **extra: Any) -> dict[str, Any]:
    return {"incident_id": "inc-1", "seq": seq, "tenant": "default", "kind": "note",
            "at": at, "actor": "alice", "message": f"m{seq}", "details": extra}  # fmt: skip


def test_bulk_rows_read_back_and_store_like_the_core_insert(engine: Engine) -> None:
    plus2 = timezone(timedelta(hours=2))
    core = [_event(1, T0), _event(3, T0 + timedelta(microseconds=250), k="v")]
    mine = [_event(2, (T0 + timedelta(seconds=1)).astimezone(plus2), n=[1, None, "x"]),
            _event(4, T0 + timedelta(microseconds=250), k="v")]  # fmt: skip
    with engine.begin() as conn:
        conn.execute(timeline.insert(), core)
        bulk.insert(conn, timeline, mine)
    with engine.connect() as conn:
        rows = conn.execute(select(timeline).order_by(timeline.c.at, timeline.c.seq)).all()
        raw = dict(conn.exec_driver_sql("SELECT seq, CAST(at AS TEXT) FROM timeline").all())
        details = dict(conn.exec_driver_sql("SELECT seq, CAST(details AS TEXT) FROM timeline")
                       .all())  # fmt: skip
    assert [r.seq for r in rows] == [1, 3, 4, 2], "instants from both paths sort together"
    assert rows[3].at == T0 + timedelta(seconds=1) and rows[3].at.tzinfo is not None
    assert rows[3].details == {"n": [1, None, "x"]}
    assert raw[3] == raw[4], "the same instant is the same stored text"
    assert details[3] == details[4], "the same JSON is the same stored text"


def test_conflicts_are_left_alone_or_replaced(engine: Engine) -> None:
    with engine.begin() as conn:
        bulk.insert(conn, timeline, [_event(1, T0)])
        bulk.insert(conn, timeline, [{**_event(1, T0), "message": "again"}, _event(2, T0)])
        row = _incident("first")
        bulk.insert(conn, incidents, [row], on_conflict="update")
        bulk.insert(conn, incidents, [{**row, "title": "second", "version": 2}],
                    on_conflict="update")  # fmt: skip
        # a column left out is NULL: a silence not expired
        bulk.insert(conn, silences, [{
            "silence_id": "s1", "tenant": "default", "matchers": [], "starts_at": T0,
            "ends_at": T0 + timedelta(hours=1), "author": "a", "comment": "", "weekly": None,
            "created_at": T0, "origin": "api"}])  # fmt: skip
    with engine.connect() as conn:
        assert conn.execute(select(timeline.c.message).order_by(timeline.c.seq)).scalars().all() \
            == ["m1", "m2"]  # fmt: skip
        inc = conn.execute(select(incidents)).one()
        assert (inc.title, inc.version, inc.storm) == ("second", 2, None)
        s = conn.execute(select(silences)).one()
        assert s.expired_at is None and s.weekly is None


def _incident(title: str) -> dict[str, Any]:
    return {
        "incident_id": "inc-1", "tenant": "default", "group_key": "g", "version": 1,
        "status": "triggered", "title": title, "severity": "critical", "priority": "P1",
        "service": "db", "team": None, "labels": {"host": "db-1"}, "opened_at": T0,
        "acknowledged_at": None, "resolved_at": None, "updated_at": T0, "assignee": None,
        "escalation_policy": None, "escalation_level": 0, "snoozed_until": None,
        "flapping": False, "notified_targets": [], "storm": None, "alert_count": 1,
        "search": title,
    }  # fmt: skip

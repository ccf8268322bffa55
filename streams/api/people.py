"""/api/v1 silences, on-call and reports: what is muted, who is on call, how it went."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from aiohttp import web
from pydantic import ValidationError
from sqlalchemy import Connection

from processors.incidents.oncall import next_handoffs, on_call, with_overrides
from schemas.api import (
    Accepted,
    OnCall,
    OnCallList,
    OverrideBody,
    Report,
    Shift,
    SilenceBody,
    SilenceList,
)
from schemas.commands import OnCallOverride, SilenceSpec
from schemas.config import Config
from streams.api.app import Api, ApiError, json, problem, report_query
from streams.store import queries

SILENCE_STATES = ("active", "pending", "expired")


def add_routes(api: Api, app: web.Application) -> None:
    async def silences(request: web.Request) -> web.Response:
        state = request.query.get("state")
        if state is not None and state not in SILENCE_STATES:
            raise ApiError(400, f"query.state: one of {', '.join(SILENCE_STATES)}", "state")
        items = await api.db(queries.list_silences, api.principal(request).tenant,
                             api.clock(), state)  # fmt: skip
        return json(200, SilenceList(items=items))

    async def silence(request: web.Request) -> web.Response:
        sid = request.match_info["silence_id"]
        found = await api.db(queries.get_silence, api.principal(request).tenant, sid,
                             api.clock())  # fmt: skip
        if found is None:
            raise ApiError(404, f"no silence {sid!r}")
        return json(200, found)

    async def create(request: web.Request) -> web.Response:
        body = await api.body(request, SilenceBody)
        return json(202, await create_silence(api, request, body))

    async def expire(request: web.Request) -> web.Response:
        return json(202, await expire_silence(api, request, request.match_info["silence_id"]))

    async def oncall(request: web.Request) -> web.Response:
        return json(200, await oncall_now(api, api.principal(request).tenant))

    async def override(request: web.Request) -> web.Response:
        body = await api.body(request, OverrideBody)
        if api.config(request).schedule(body.schedule) is None:
            raise ApiError(400, f"body.schedule: no schedule {body.schedule!r}", "schedule")
        if api.config(request).user(body.user) is None:
            raise ApiError(400, f"body.user: no user {body.user!r}", "user")
        start = body.start or api.clock()
        try:
            spec = OnCallOverride(schedule=body.schedule, user=body.user, start=start,
                                  end=body.end, author=api.principal(request).user)  # fmt: skip
        except ValidationError as exc:
            raise problem(exc, "body") from None
        cmd = api.command(request, action="override", override=spec)
        await api.send(cmd, cmd.event_id)
        return json(202, Accepted(command_id=cmd.event_id))

    async def report(request: web.Request) -> web.Response:
        q = report_query(request)
        until = q.until or api.clock()
        since = until - q.since if isinstance(q.since, timedelta) else q.since
        if since >= until:
            raise ApiError(400, "query.since: must be before until", "since")
        sla = {p: t for p, t in api.config(request).ack_sla.items()}
        doc = await api.db(_report, api.principal(request).tenant, since, until, q.group_by,
                           sla)  # fmt: skip
        from streams.api.reports import report_response

        return report_response(request, doc)

    app.router.add_get("/api/v1/silences", silences)
    app.router.add_post("/api/v1/silences", create)
    app.router.add_get("/api/v1/silences/{silence_id}", silence)
    app.router.add_delete("/api/v1/silences/{silence_id}", expire)
    app.router.add_get("/api/v1/oncall", oncall)
    app.router.add_post("/api/v1/oncall/overrides", override)
    app.router.add_get("/api/v1/reports", report)


async def create_silence(api: Api, request: web.Request, body: SilenceBody) -> Accepted:
    """A `silence` Command as the request's principal (the API and the console)."""
    now = api.clock()
    starts = body.starts_at or now
    ends = body.ends_at or starts + (body.duration or timedelta(0))
    who = api.principal(request)
    try:
        spec = SilenceSpec(matchers=body.matchers, starts_at=starts, ends_at=ends,
                           author=who.user, comment=body.comment,
                           weekly=body.weekly)  # fmt: skip
    except ValidationError as exc:
        raise problem(exc, "body") from None
    if ends <= now:
        raise ApiError(400, "body.ends_at: the silence would have ended already", "ends_at")
    cmd = api.command(request, action="silence", silence=spec)
    await api.send(cmd, cmd.event_id)
    return Accepted(command_id=cmd.event_id, silence_id=cmd.event_id)


async def expire_silence(api: Api, request: web.Request, sid: str) -> Accepted:
    """An `expire_silence` Command as the request's principal, once the silence is live."""
    cmd = api.command(request, action="expire_silence", silence_id=sid)
    found = await api.db(queries.get_silence, api.principal(request).tenant, sid,
                         api.clock())  # fmt: skip
    if found is None:
        raise ApiError(404, f"no silence {sid!r}")
    if found.state == "expired":
        raise ApiError(409, f"silence {sid} has expired already")
    await api.send(cmd, sid)
    return Accepted(command_id=cmd.event_id, silence_id=sid)


async def oncall_now(api: Api, tenant: str) -> OnCallList:
    now = api.clock()
    rows = await api.db(queries.live_overrides, tenant, now)
    return _oncall(api, api.configs.get(tenant, api.cfg), rows, now)


def _report(conn: Connection, tenant: str, since: datetime, until: datetime, group_by: str,
            sla: dict[str, timedelta]) -> Report:  # fmt: skip
    return queries.report(conn, tenant, since, until, group_by, sla)


def _oncall(api: Api, tenant_cfg: Config, rows: list[dict[str, object]],
            now: datetime) -> OnCallList:  # fmt: skip
    runtime = [OnCallOverride(schedule=str(r["schedule"]), user=str(r["user"]),
                              start=r["starts_at"], end=r["ends_at"],
                              author=str(r["author"])) for r in rows]  # fmt: skip
    cfg = with_overrides(tenant_cfg, runtime)

    def name(uid: str | None) -> str | None:
        u = cfg.user(uid) if uid else None
        return u.name if u else None

    items = []
    for sched in cfg.schedules:
        tz = ZoneInfo(sched.timezone)
        who = on_call(sched, now)
        handoffs = next_handoffs(sched, now, count=3)
        nxt = []
        for i, (at, user) in enumerate(handoffs):
            until = handoffs[i + 1][0] if i + 1 < len(handoffs) else None
            nxt.append(Shift(user=user, name=name(user), since=at.astimezone(tz),
                             until=until.astimezone(tz) if until else None))  # fmt: skip
        current = Shift(user=who, name=name(who),
                        until=handoffs[0][0].astimezone(tz) if handoffs else None)  # fmt: skip
        mine = [{"user": r["user"], "starts_at": r["starts_at"], "ends_at": r["ends_at"],
                 "author": r["author"], "override_id": r["override_id"]}
                for r in rows if r["schedule"] == sched.id]  # fmt: skip
        items.append(OnCall(schedule=sched.id, timezone=sched.timezone, now=current, next=nxt,
                            overrides=mine))  # fmt: skip
    return OnCallList(at=now, items=items)

"""The CLI against a real API server over a projected store: tables by default, JSON when
asked, and the API's errors said plainly."""

from __future__ import annotations

import asyncio
import os
import sys

import orjson
import pytest

from tests.integration.store.api.conftest import TOKENS, Served
from tests.integration.store.api.test_api import N, seeded, until

__all__ = ["seeded"]
pytestmark = pytest.mark.parametrize("store", ["sqlite"], indirect=True)


async def tocsin(served: Served, *args: str, role: str = "responder") -> tuple[int, str]:
    env = {**os.environ, "TOCSIN_API_URL": served.url, "TOCSIN_API_TOKEN": TOKENS[role]}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "streams.cli.main", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode()


async def test_incidents_list_show_and_act(seeded: Served) -> None:
    code, out = await tocsin(seeded, "incidents", "list", "--status", "acknowledged")
    assert code == 0, out
    lines = out.strip().splitlines()
    assert lines[0].split()[:3] == ["INCIDENT_ID", "STATUS", "PRIORITY"]
    assert len(lines) == 1 + N // 10 and all(" acknowledged " in ln for ln in lines[1:])
    iid = lines[1].split()[0]
    code, out = await tocsin(seeded, "incidents", "show", iid, "-o", "json")
    assert code == 0 and orjson.loads(out)["incident_id"] == iid
    member = orjson.loads(out)["members"][0]
    code, out = await tocsin(seeded, "incidents", "show", iid)
    assert "TIMELINE" in out and "looking into it" in out
    # a value as Slack and the console show it: four significant digits
    row = next(ln for ln in out.splitlines() if ln.startswith(member["fingerprint"]))
    assert row.split()[3:5] == [f"{member['value']:.4g}", "90"], row
    code, out = await tocsin(seeded, "incidents", "note", iid, "rolled back")
    assert code == 0 and "accepted as command" in out
    code, out = await tocsin(seeded, "incidents", "resolve", iid, role="viewer")
    assert code == 1 and "403" in out and "viewer" in out


async def test_silence_add_list_expire(seeded: Served) -> None:
    code, sid = await tocsin(seeded, "silence", "add", "service=search", "host=~'web-.*'",
                             "-d", "2h", "-c", "reindex")  # fmt: skip
    assert code == 0, sid
    sid = sid.strip()

    async def listed() -> bool:
        _, out = await tocsin(seeded, "silence", "list", "-o", "json")
        return any(s["silence_id"] == sid for s in orjson.loads(out)["items"])

    await until("the silence", listed)
    _, out = await tocsin(seeded, "silence", "list")
    assert "host=~web-.*" in out and "reindex" in out
    code, out = await tocsin(seeded, "silence", "expire", sid)
    assert code == 0 and sid in out
    code, out = await tocsin(seeded, "silence", "add", "host=~'('")
    assert code == 1 and "400" in out and "regular expression" in out


async def test_report_and_postmortem(seeded: Served) -> None:
    code, out = await tocsin(seeded, "report", "--since", "3650d", "-o", "json")
    assert code == 0 and orjson.loads(out)["total"]["incidents"] == N
    code, out = await tocsin(seeded, "report", "--since", "3650d", "--by", "priority")
    assert "MTTA_S" in out and "total" in out
    _, listed = await tocsin(seeded, "incidents", "list", "--status", "resolved", "-o", "json")
    iid = orjson.loads(listed)["items"][0]["incident_id"]
    code, md = await tocsin(seeded, "postmortem", iid)
    assert code == 0 and md.startswith("# Postmortem:") and "## Follow-ups" in md

"""The console in a real browser against the real broker, agents, notifier, projector and
API worker (`tocsin run api`), on SQLite and on PostgreSQL: an incident appears in the
open list without a reload, a click acknowledges it, the timeline shows it and the Slack
message is updated; a viewer sees no buttons, and a forged or a viewer's action gets 403.

With TOCSIN_CONSOLE_SCREENSHOTS=DIR it also saves the main pages as PNG there (the
docs' screenshots come from this run)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.incidents import EXAMPLE_CONFIG, history, produce
from harness.workers import kill9, start_agents
from schemas import Alert, encode
from streams.catalog import Catalog
from streams.demo.fake_slack import FakeSlack, serve
from streams.kafka import make_producer
from streams.settings import KafkaSettings
from streams.store.db import StoreSettings
from tests.integration.store.api.conftest import TOKENS, config_dir, free_port
from tests.integration.store.api.test_api import until
from tests.integration.store.conftest import store_env

SHOTS = os.environ.get("TOCSIN_CONSOLE_SCREENSHOTS")  # Playwright makes the directory


def _alert(fp: str, host: str, rule: str = "disk_full") -> Alert:
    return Alert(fingerprint=fp, status="firing", rule=rule, severity="critical",
                 labels={"alertname": rule, "service": "db", "host": host},
                 summary=f"disk full on {host}", value=99.123456789, threshold=95.0,
                 starts_at=datetime.now(UTC))  # fmt: skip


def _env(settings: KafkaSettings, **extra: str) -> dict[str, str]:
    return {**os.environ, "TOCSIN_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
            "TOCSIN_TOPIC_PREFIX": settings.topic_prefix,
            "TOCSIN_PARTITIONS": str(settings.partitions), "TOCSIN_LOG_FORMAT": "json",
            **extra}  # fmt: skip


def _worker(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "streams.cli.main", "run", *args], env=env,
                            stdout=log.open("ab"), stderr=subprocess.STDOUT,
                            start_new_session=True)  # fmt: skip


@pytest.fixture
def fake_slack() -> Iterator[tuple[FakeSlack, str]]:
    slack = FakeSlack()
    with serve(slack.app()) as url:
        yield slack, f"{url}/api/"


async def _up(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    async def answers() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"the API worker exited: see {log}")
        try:
            async with httpx.AsyncClient(timeout=5) as c:
                return (await c.get(f"{url}/healthz")).status_code == 200
        except httpx.HTTPError:
            return False

    await until("the API worker", answers, 60)


async def _login(browser: Any, url: str, role: str) -> Any:
    ctx = await browser.new_context(viewport={"width": 1280, "height": 860})
    page = await ctx.new_page()
    await page.goto(f"{url}/console/")
    assert page.url.endswith("/console/login"), "no session: off to the login page"
    await page.fill("input[name=token]", "tsn_not_a_token")
    await page.click("button[type=submit]")
    assert await page.locator(".error").inner_text() == "unknown API token"
    await page.fill("input[name=token]", TOKENS[role])
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{url}/console/")
    (cookie,) = await ctx.cookies()
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict", cookie
    assert TOKENS[role] not in cookie["value"], "the cookie is a session id, not the token"
    return page


async def _shot(page: Any, name: str) -> None:
    if SHOTS:
        await page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)


async def test_an_incident_appears_live_and_is_acknowledged_with_a_click(
    kafka_settings: KafkaSettings, topics: Catalog, running_projector: Any,
    store: StoreSettings, browser: Any, fake_slack: tuple[FakeSlack, str], tmp_path: Path,
) -> None:  # fmt: skip
    slack, slack_url = fake_slack
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    configs = [a for p in config_dir(tmp_path) for a in ("--config", str(p))]
    logs = {n: tmp_path / f"{n}.log" for n in ("agents", "notifier", "api")}
    procs = [
        start_agents(kafka_settings, EXAMPLE_CONFIG / "tocsin.yaml", logs["agents"]),
        _worker(["notifier", "--health-port", "0"],
                _env(kafka_settings, TOCSIN_SLACK_BASE_URL=slack_url,
                     SLACK_BOT_TOKEN="xoxb-test"), logs["notifier"]),
        _worker(["api", *configs, "--host", "127.0.0.1", "--port", str(port)],
                _env(kafka_settings, **store_env(store)), logs["api"]),
    ]  # fmt: skip
    producer = make_producer(kafka_settings)
    # a week behind it, for the reports' charts (one incident every four hours)
    week = datetime.now(UTC) - timedelta(days=7) + timedelta(hours=1)
    produce(kafka_settings, history(42, week, every=timedelta(hours=4)), producer)
    try:
        await _up(url, procs[2], logs["api"])
        page = await _login(browser, url, "responder")
        await page.wait_for_selector("#live.on", timeout=30_000)
        # a mark that a reload would wipe: the row must arrive with it still there
        await page.evaluate("window.tocsinNoReload = true")
        row = page.locator("#incidents tbody tr", has_text="db-1")
        assert await row.count() == 0

        producer.produce(topics.name("alerts"), key=b"fp-a", value=encode(_alert("fp-a", "db-1")))
        assert producer.flush(10) == 0
        await row.wait_for(timeout=120_000)
        assert await page.evaluate("window.tocsinNoReload === true"), "the page was reloaded"
        assert await row.locator(".badge").inner_text() == "triggered"
        await _shot(page, "incidents")

        await row.locator("a").click()
        await page.wait_for_selector("#timeline li")
        cells = await page.locator("table.members td.num").all_inner_texts()
        assert cells[:2] == ["99.12", "95"], "the value and threshold, as Slack shows them"
        clicked = time.monotonic()
        # the notice is only on the page until the change lands and the page redraws
        # itself, which can be sooner than a poll for it: note where the click's answer
        # sends the browser, and read the notice from that page
        sent_to: list[str] = []

        async def keep(route: Any) -> None:
            answer = await route.fetch(max_redirects=0)
            sent_to.append(answer.headers.get("location", ""))
            await route.fulfill(response=answer)

        def the_click(u: str) -> bool:
            return u.endswith("/ack")

        await page.route(the_click, keep)
        await page.click("button:has-text('Acknowledge')")

        async def answered() -> bool:
            return bool(sent_to)

        await until("the answer to the click", answered, 30)
        await page.unroute(the_click)
        notice = await (await page.request.get(url + sent_to[0])).text()
        assert 'id="sent"' in notice and "Acknowledge sent" in notice
        ack = page.locator("#timeline li.kind-acknowledged")
        await ack.wait_for(timeout=60_000)  # the page reloads itself once the change lands
        took = time.monotonic() - clicked
        assert "Carol Diaz" in await ack.inner_text(), "acknowledged as the session's user"
        # the snapshot and the ledger entry are two topics, projected in either order: the
        # page redraws again when the snapshot lands
        await page.locator("#status", has_text="acknowledged").wait_for(timeout=60_000)
        assert await page.locator("button:has-text('Acknowledge')").count() == 0

        async def slack_updated() -> bool:
            return any(m == "chat.update" and "acknowledged" in str(args).lower()
                       for m, args in list(slack.calls))  # fmt: skip

        await until("the Slack message updated", slack_updated, 60)
        await page.fill("input[name=text]", "failing over to the replica")
        await page.click("button:has-text('Add note')")
        await page.locator("#timeline li", has_text="failing over").wait_for(timeout=60_000)
        await _shot(page, "incident")
        # a form sent twice (a double click, a resubmitted post) is one command
        iid = page.url.split("/incidents/")[1].split("?")[0]
        form = {
            "csrf": await page.evaluate("document.querySelector('input[name=csrf]').value"),
            "idem": await page.evaluate("document.querySelector('input[name=idem]').value"),
        }
        for text in ("sent twice", "sent twice"):
            r = await page.request.post(
                f"{url}/console/incidents/{iid}/note", form={**form, "text": text}, max_redirects=0
            )
            assert r.status == 303
        r = await page.request.post(f"{url}/console/incidents/{iid}/note",
                                    form={**form, "idem": "another", "text": "a later note"},
                                    max_redirects=0)  # fmt: skip
        assert r.status == 303
        await page.locator("#timeline li", has_text="a later note").wait_for(timeout=60_000)
        assert await page.locator("#timeline li", has_text="sent twice").count() == 1
        # levels count from 1 everywhere a responder reads them: Slack, timeline, console
        paged = page.locator("table.paged tbody tr", has_text="trigger")
        await paged.first.wait_for(timeout=60_000)
        assert set(await paged.locator("td.num").all_inner_texts()) == {"1"}
        assert "trigger level 1" in await page.locator("#timeline").inner_text()

        # a viewer: no buttons, and a viewer's or a forged action is refused
        viewer = await _login(browser, url, "viewer")
        iid = page.url.split("/incidents/")[1].split("?")[0]
        await viewer.goto(f"{url}/console/incidents/{iid}")
        assert await viewer.locator(".actions button").count() == 0
        csrf = await viewer.evaluate(
            "document.querySelector('input[name=csrf]').value")  # fmt: skip
        r = await viewer.request.post(f"{url}/console/incidents/{iid}/resolve",
                                      form={"csrf": csrf})  # fmt: skip
        assert r.status == 403, "a viewer may not resolve"
        r = await page.request.post(f"{url}/console/incidents/{iid}/resolve",
                                    form={"csrf": "forged"})  # fmt: skip
        assert r.status == 403, "a post without the session's CSRF token"
        async with httpx.AsyncClient() as c:
            r = await c.post(f"{url}/console/incidents/{iid}/resolve", data={"csrf": csrf})
        assert r.status_code == 403, "a post without a session"

        await _other_pages(page, url)
        print(f"\nconsole: click -> timeline entry shown {took * 1000:.0f} ms")
    finally:
        for p in procs:
            kill9(p)


async def _other_pages(page: Any, url: str) -> None:
    """A silence created and listed, the on-call page, the resolved incident's postmortem
    draft and the reports with their charts."""
    await page.goto(f"{url}/console/silences")
    await page.fill("input[name=matchers]", "service=db host=~'db-9.*'")
    await page.fill("input[name=comment]", "disk replacement")
    await page.click("button:has-text('Create silence')")

    async def listed() -> bool:
        await page.goto(f"{url}/console/silences")
        return await page.locator("tr.state-active", has_text="disk replacement").count() > 0

    await until("the silence listed", listed, 60)
    await _shot(page, "silences")
    await page.fill("input[name=matchers]", "host=~'web-(' ")
    await page.click("button:has-text('Create silence')")
    assert "matchers" in await page.locator(".error").inner_text(), "the bad regex is named"
    await page.locator("tr.state-active", has_text="disk replacement").locator("button").click()

    async def expired() -> bool:
        await page.goto(f"{url}/console/silences")
        return await page.locator("tr.state-expired", has_text="disk replacement").count() > 0

    await until("the silence expired", expired, 60)

    await page.goto(f"{url}/console/oncall")
    assert await page.locator("section.schedule").count() > 0
    await _shot(page, "oncall")

    await page.goto(f"{url}/console/")
    await page.locator("#incidents tbody tr", has_text="db-1").locator("a").click()
    await page.click("button:has-text('Resolve')")
    await page.locator("#timeline li.kind-resolved").wait_for(timeout=60_000)
    await page.click("a:has-text('Postmortem draft')")
    text = await page.locator("#postmortem").inner_text()
    assert "Root cause" in text and "disk_full" in text
    await _shot(page, "postmortem")

    async def reported() -> bool:
        await page.goto(f"{url}/console/reports?since=7d")
        return "43" in await page.locator(".kpis").inner_text()

    await until("the week's incidents in the report", reported, 60)
    assert await page.locator("svg.chart").count() == 2
    per_service = await page.locator("svg.chart").nth(1).text_content() or ""
    assert all(s in per_service for s in ("db", "search", "checkout"))
    assert await page.locator("svg.chart polyline").count() == 2, "MTTA and MTTR trends"
    await _shot(page, "reports")
    await asyncio.sleep(0)

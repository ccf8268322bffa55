"""The Slack sink against a local fake Slack Web API, through the real slack-sdk."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from aiohttp.test_utils import TestServer
from slack_sdk.web.async_client import AsyncWebClient

from connectors.sinks.slack import SlackSink
from connectors.slack.render import blocks
from connectors.slack.signature import SignatureError, SignatureVerifier
from schemas import Notification
from schemas.alerts import AnomalyDetail
from streams.demo.fake_slack import FakeSlack

T0 = datetime(2026, 1, 1, tzinfo=UTC)


class MemoryStore:
    def __init__(self) -> None:
        self.data: dict[tuple[str, str], str] = {}

    def get(self, incident_id: str, channel: str) -> str | None:
        return self.data.get((incident_id, channel))

    def put(self, incident_id: str, channel: str, ts: str) -> None:
        self.data[(incident_id, channel)] = ts

    def may_have_sent(self, notification_id: str) -> bool:
        return self.replayed  # a fresh store stands for a restart: anything may have been

    replayed = True


def note(kind: str = "trigger", status: str = "triggered", channel: str = "slack",
         target: str = "C123", labels: dict[str, str] | None = None) -> Notification:  # fmt: skip
    return Notification(
        notification_id=f"inc-1/{kind}/{target}", incident_id="inc-1", kind=kind,  # type: ignore[arg-type]
        channel=channel, target=target, title="CPU 95% on web-03", status=status,  # type: ignore[arg-type]
        severity="critical", priority="P1", service="checkout",
        labels=labels or {"host": "web-03"}, value=95.0, threshold=85.0,
        runbook_url="https://rb/cpu", opened_at=T0, at=T0,
    )  # fmt: skip


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeSlack, AsyncWebClient]]:
    slack = FakeSlack()
    server = TestServer(slack.app(), host="127.0.0.1")
    await server.start_server()
    client = AsyncWebClient(token="xoxb-test", base_url=f"http://127.0.0.1:{server.port}/api/")
    yield slack, client
    await server.close()


async def test_one_message_per_incident_updated_in_place_with_a_thread(
    fake: tuple[FakeSlack, AsyncWebClient],
) -> None:
    slack, client = fake
    sink = SlackSink(client, MemoryStore())
    first = await sink.deliver(note())
    second = await sink.deliver(note(kind="update", status="acknowledged"))
    third = await sink.deliver(note(kind="resolve", status="resolved"))
    assert first.ok and second.ok and third.ok
    posts = [a for m, a in slack.calls if m == "chat.postMessage" and not a.get("thread_ts")]
    assert len(posts) == 1, "one message per incident and channel"
    assert slack.methods().count("chat.update") == 2
    threads = [a for m, a in slack.calls if m == "chat.postMessage" and a.get("thread_ts")]
    assert [t["text"].split(":")[0] for t in threads] == ["updated", "resolved"]
    assert first.external_ref == second.external_ref


async def test_no_second_message_after_a_crash_between_post_and_record(
    fake: tuple[FakeSlack, AsyncWebClient],
) -> None:
    slack, client = fake
    await SlackSink(client, MemoryStore()).deliver(note())
    restarted = SlackSink(client, MemoryStore())  # the ts mapping was lost with the process
    result = await restarted.deliver(note(kind="update", status="acknowledged"))
    assert result.ok
    posts = [a for m, a in slack.calls if m == "chat.postMessage" and not a.get("thread_ts")]
    assert len(posts) == 1
    assert "chat.update" in slack.methods()


async def test_the_same_notification_redelivered_after_a_crash_shows_nothing_twice(
    fake: tuple[FakeSlack, AsyncWebClient],
) -> None:
    slack, client = fake
    await SlackSink(client, MemoryStore()).deliver(note())
    restarted = SlackSink(client, MemoryStore())  # posted, then killed before the receipt
    result = await restarted.deliver(note())
    assert result.ok
    visible = [m for m, _ in slack.calls if m in ("chat.postMessage", "chat.update")]
    assert visible == ["chat.postMessage"], "no update and no timeline line for a page shown"


async def test_rate_limit_is_retryable_with_retry_after(
    fake: tuple[FakeSlack, AsyncWebClient],
) -> None:
    slack, client = fake
    slack.fail("chat.postMessage", 429, "ratelimited", {"Retry-After": "7"})
    result = await SlackSink(client, MemoryStore()).deliver(note())
    assert not result.ok
    assert result.retryable
    assert result.retry_after == 7.0
    slack.fail("chat.postMessage", 404, "channel_not_found")
    bad = await SlackSink(client, MemoryStore()).deliver(note(target="C404"))
    assert not bad.retryable
    assert bad.error == "channel_not_found"


async def test_dm_opens_a_conversation_with_the_paged_user_once(
    fake: tuple[FakeSlack, AsyncWebClient],
) -> None:
    slack, client = fake
    page = note(channel="slack_dm", target="U1")
    result = await SlackSink(client, MemoryStore()).deliver(page)
    assert result.ok
    assert slack.calls[0] == ("conversations.open", {"users": "U1"})
    posts = [a for m, a in slack.calls if m == "chat.postMessage"]
    assert [p["channel"] for p in posts] == ["DU1"]
    again = await SlackSink(client, MemoryStore()).deliver(page)  # a restart re-delivers it
    assert again.ok and again.external_ref == result.external_ref
    assert len([m for m, _ in slack.calls if m == "chat.postMessage"]) == 1, "paged once"


async def test_each_dm_says_why_it_came(fake: tuple[FakeSlack, AsyncWebClient]) -> None:
    # a person paged at level 1 gets the escalation and the reminder as new DMs too: each
    # must say what it is, not read like the first page again
    slack, client = fake
    sink = SlackSink(client, MemoryStore())
    steps = [("trigger", "triggered", 0), ("escalate", "triggered", 1),
             ("escalate", "acknowledged", 2), ("reminder", "triggered", 1),
             ("flapping", "triggered", 0), ("update", "acknowledged", 0),
             ("resolve", "resolved", 1)]  # fmt: skip
    for kind, status, level in steps:
        page = note(kind=kind, status=status, channel="slack_dm", target="U1").model_copy(
            update={"escalation_level": level, "notification_id": f"inc-1/{kind}.{level}/U1"}
        )
        assert (await sink.deliver(page)).ok
    texts = [a["text"] for m, a in slack.calls if m == "chat.postMessage"]
    assert [t.split("] ", 1)[1] for t in texts] == [
        "Triggered: CPU 95% on web-03",
        "Escalated to level 2: CPU 95% on web-03",
        "Escalated to level 3: CPU 95% on web-03",
        "Still not acknowledged: CPU 95% on web-03",
        "Flapping, triggered: CPU 95% on web-03",
        "Acknowledged: CPU 95% on web-03",
        "Resolved: CPU 95% on web-03",
    ]
    shown = [a["blocks"][0]["text"]["text"] for m, a in slack.calls if m == "chat.postMessage"]
    assert all(f"*{t}*" == b for t, b in zip(texts, shown, strict=True)), "the message says it too"


async def test_a_channel_named_by_name_is_updated_by_its_id_after_a_restart(
    fake: tuple[FakeSlack, AsyncWebClient],
) -> None:
    slack, client = fake
    slack.names["platform-alerts"] = "C_PLAT"
    first = await SlackSink(client, MemoryStore()).deliver(note(target="#platform-alerts"))
    restarted = SlackSink(client, MemoryStore())
    second = await restarted.deliver(note("update", "acknowledged", target="#platform-alerts"))
    assert first.ok and second.ok and first.external_ref == second.external_ref
    [update] = [a for m, a in slack.calls if m == "chat.update"]
    assert update["channel"] == "C_PLAT", "chat.update needs the channel id, not its name"
    assert len(slack.messages["C_PLAT"]) == 1


@pytest.mark.parametrize("ch", ["a", "&"], ids=["plain", "escaped"])
async def test_a_page_with_the_longest_title_labels_and_summary_is_posted_and_updated(
    fake: tuple[FakeSlack, AsyncWebClient], ch: str
) -> None:
    # every text at its schema's bound (and `&`, which escaping makes five characters):
    # Slack refuses a message beyond its block limits, and the page with it
    slack, client = fake
    labels = {f"label_{i:02d}": ch * 1024 for i in range(64)}
    big = note(labels=labels).model_copy(update={
        "title": ch * 8192, "summary": ch * 8192, "service": "s" * 64,
        "value": None, "threshold": None,
        "anomaly": AnomalyDetail(score=0.9, expected=1.0, rarity="r" * 1024,
                                 series=ch * 1024),
    })  # fmt: skip
    sink = SlackSink(client, MemoryStore())
    posted = await sink.deliver(big)
    update = {"notification_id": "inc-1/update/C123", "kind": "update", "status": "acknowledged"}
    updated = await sink.deliver(big.model_copy(update=update))
    assert posted.ok and updated.ok, (posted, updated)
    (msg,) = slack.messages["C123"]
    assert msg["text"].endswith("\u2026") and "&am\u2026" not in msg["text"]
    threads = [a for m, a in slack.calls if m == "chat.postMessage" and a.get("thread_ts")]
    assert len(threads) == 1


def test_label_text_cannot_mention_the_channel() -> None:
    rendered = str(blocks(note(labels={"host": "<!channel> <https://evil|click>"})))
    assert "<!channel>" not in rendered
    assert "&lt;!channel&gt;" in rendered
    assert "<https://evil" not in rendered


def test_signature_rejects_wrong_stale_and_replayed_requests() -> None:
    v = SignatureVerifier("secret")
    body = b"payload=%7B%7D"
    good = v.sign("1000", body)
    v.verify("1000", good, body, now=1000)
    with pytest.raises(SignatureError, match="replayed"):
        v.verify("1000", good, body, now=1001)
    with pytest.raises(SignatureError, match="mismatch"):
        v.verify("1000", good, b"payload=tampered", now=1000)
    with pytest.raises(SignatureError, match="stale"):
        v.verify("1000", v.sign("1000", b"x"), b"x", now=1000 + 301)
    with pytest.raises(SignatureError, match="missing"):
        v.verify(None, None, body, now=1000)


async def test_a_slack_timeout_or_500_is_retryable_and_posts_nothing_twice(
    fake: tuple[FakeSlack, AsyncWebClient],
) -> None:
    slack, client = fake
    impatient = AsyncWebClient(token="xoxb-test", base_url=client.base_url, timeout=0.3)
    slack.hang("chat.postMessage", 1.0)
    timed_out = await SlackSink(impatient, MemoryStore()).deliver(note())
    assert not timed_out.ok and timed_out.retryable
    slack.fail("chat.update", 500, "internal_error")
    store = MemoryStore()
    sink = SlackSink(impatient, store)
    first = await sink.deliver(note(kind="update", status="acknowledged"))
    # the hung post did reach Slack: it is found by metadata and updated, not re-posted
    assert not first.ok and first.retryable and first.status_code == 500
    again = await sink.deliver(note(kind="update", status="acknowledged"))
    assert again.ok
    posts = [a for m, a in slack.calls if m == "chat.postMessage" and not a.get("thread_ts")]
    assert len(posts) == 1


async def test_an_update_redelivered_after_its_line_was_posted_shows_nothing_twice(
    fake: tuple[FakeSlack, AsyncWebClient],
) -> None:
    slack, client = fake
    store = MemoryStore()
    await SlackSink(client, store).deliver(note())
    update = note(kind="update", status="acknowledged")
    assert (await SlackSink(client, store).deliver(update)).ok
    # killed after Slack threaded the line, before the receipt: the restart sends it again
    again = await SlackSink(client, store).deliver(update)
    assert again.ok
    lines = [a["text"] for m, a in slack.calls if m == "chat.postMessage" and a.get("thread_ts")]
    assert len(lines) == 1 and lines[0].startswith("updated"), lines
    assert slack.methods().count("chat.update") == 1, "the message already shows the update"
    resolved = await SlackSink(client, MemoryStore()).deliver(note("resolve", "resolved"))
    assert resolved.ok, "a later notification is still updated and threaded"
    assert slack.methods().count("chat.update") == 2
    assert len([m for m, a in slack.calls if m == "chat.postMessage" and a.get("thread_ts")]) == 2
    assert "Resolved" in str(slack.messages["C123"][0]["text"])


async def test_an_update_whose_line_failed_is_threaded_once_and_not_updated_again(
    fake: tuple[FakeSlack, AsyncWebClient],
) -> None:
    slack, client = fake
    sink = SlackSink(client, MemoryStore())
    await sink.deliver(note())
    update = note(kind="update", status="acknowledged")
    slack.fail("chat.postMessage", 500, "internal_error")  # the update went through
    first = await sink.deliver(update)
    assert not first.ok and first.retryable
    again = await SlackSink(client, MemoryStore()).deliver(update)  # and after a restart
    assert again.ok
    assert slack.methods().count("chat.update") == 1
    lines = [a for m, a in slack.calls if m == "chat.postMessage" and a.get("thread_ts")]
    assert len(lines) == 2 and [len(slack.threads[k]) for k in slack.threads] == [1], (
        "one line in the thread: the failed attempt posted none"
    )


async def test_a_trigger_redelivered_after_its_update_was_shown_changes_nothing(
    fake: tuple[FakeSlack, AsyncWebClient],
) -> None:
    slack, client = fake
    await SlackSink(client, MemoryStore()).deliver(note())
    await SlackSink(client, MemoryStore()).deliver(note("update", "acknowledged"))
    # both were shown before a crash lost both receipts: the batch is read again
    assert (await SlackSink(client, MemoryStore()).deliver(note())).ok
    assert slack.methods().count("chat.update") == 1, "no stale 'triggered' over the ack"
    assert len([m for m, a in slack.calls if m == "chat.postMessage"]) == 2
    assert "Acknowledged" in str(slack.messages["C123"][0]["text"])


async def test_a_recorded_message_is_updated_without_reading_the_channel(
    fake: tuple[FakeSlack, AsyncWebClient],
) -> None:
    slack, client = fake
    store = MemoryStore()
    store.replayed = False  # read after the partition was assigned: nobody sent it before
    sink = SlackSink(client, store)
    assert (await sink.deliver(note())).ok
    assert (await sink.deliver(note(channel="slack_dm", target="U1"))).ok
    assert (await SlackSink(client, store).deliver(note("update", "acknowledged"))).ok
    assert "conversations.history" not in slack.methods(), "found by what was recorded"
    [update] = [a for m, a in slack.calls if m == "chat.update"]
    assert (update["channel"], update["ts"]) == ("C123", slack.messages["C123"][0]["ts"])


async def test_a_post_that_timed_out_is_looked_for_before_posting_again(
    fake: tuple[FakeSlack, AsyncWebClient],
) -> None:
    slack, client = fake
    store = MemoryStore()
    store.replayed = False
    impatient = AsyncWebClient(token="xoxb-test", base_url=client.base_url, timeout=0.3)
    sink = SlackSink(impatient, store)
    slack.hang("chat.postMessage", 1.0)
    assert not (await sink.deliver(note())).ok  # Slack posted; the answer came too late
    assert (await sink.deliver(note())).ok
    posts = [a for m, a in slack.calls if m == "chat.postMessage" and not a.get("thread_ts")]
    assert len(posts) == 1 and "conversations.history" in slack.methods()


async def test_the_search_for_an_unrecorded_post_reads_a_bounded_history(
    fake: tuple[FakeSlack, AsyncWebClient],
) -> None:
    slack, client = fake
    for i in range(1200):  # a busy channel: the incident's message is past 1,000 newer ones
        slack.messages.setdefault("C123", []).append({"ts": f"1.{i:06d}", "text": "other"})
    assert (await SlackSink(client, MemoryStore()).deliver(note("update", "acknowledged"))).ok
    assert slack.methods().count("conversations.history") == 5, "five pages of 200 at most"

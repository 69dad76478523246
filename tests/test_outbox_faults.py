"""The outbox drained through the real python-telegram-bot against the fake Bot API: each
failure Telegram answers, per chat, ends where it should; later sources edit sent alerts;
hostile titles never cause a 400; two claimers never share a row; operators see the queue."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import builders
import pytest
from fakebotapi import FakeBotApi, Fault

from bot.delivery import Deliverer
from bot.model import Candidate, Feed
from bot.outbox_view import outbox_summary, outbox_text
from bot.store import Store
from bot.telegram.transport import TelegramTransport, build_application

TOKEN = "123456:AAHsecretsecretsecretsecret_-42"
A = Feed(url="http://127.0.0.1/a.xml", name="Outlet A")
B = Feed(url="http://127.0.0.1/b.xml", name="Outlet B")


def utcnow() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = await Store.open(f"sqlite:///{tmp_path}/db.sqlite")
    await s.feeds.sync([A, B])
    yield s
    await s.close()


@pytest.fixture
async def api() -> AsyncIterator[FakeBotApi]:
    async with FakeBotApi(TOKEN) as server:
        yield server


@pytest.fixture
async def transport(api: FakeBotApi) -> AsyncIterator[TelegramTransport]:
    async with build_application(TOKEN, api.api_url).bot as bot:
        yield TelegramTransport(bot)


def candidate(title: str, link: str, summary: str = "fintech news") -> Candidate:
    return builders.candidate(
        title, link, summary=summary, published=utcnow(), keywords=("fintech",)
    )


async def save(store: Store, feed: Feed, *cands: Candidate) -> None:
    now = utcnow()
    await builders.save(store, feed.url, cands, now)


def deliverer(store: Store, transport: TelegramTransport) -> Deliverer:
    return Deliverer(store, transport, clock=utcnow, tz=UTC, pacer=builders.unpaced())


async def test_each_telegram_failure_ends_where_it_should(
    store: Store, api: FakeBotApi, transport: TelegramTransport
) -> None:
    chats = {1: Fault.retry_after(1), 2: Fault.server_error(), 3: Fault.bad_gateway()}
    chats |= {4: Fault.dropped(), 5: Fault.blocked(), 6: Fault.chat_not_found()}
    chats |= {-7: Fault.migrated(-1007), 8: None}
    for chat, fault in chats.items():
        await store.chats.subscribe(chat, ["t"])
        if fault is not None:
            api.inject("sendMessage", fault, chat_id=chat)
    await save(store, A, candidate("Shenzhen fintech pilot widens", "https://a/1"))
    d = deliverer(store, transport)
    # Transient failures come back after their backoff (5 s) or retry_after (1 s).
    report = await d.drain(wait_until=utcnow() + timedelta(seconds=30))
    sent_to = sorted(int(s.chat_id) for s in api.sent)
    assert sent_to == [-1007, 1, 2, 3, 4, 8]
    assert (report.sent, report.dead) == (6, 2)
    assert await store.outbox.counts() == {"sent": 6, "dead": 2}
    view = outbox_text(await store.outbox.report(utcnow()))
    assert "chat not found" in view.lower() and "blocked by the user" in view
    assert await store.chats.subscriptions(-1007) == ["t"]


@pytest.mark.parametrize(
    "title",
    [
        '<script>alert("x")</script> & co',
        "<b>unclosed <i>tags & stuff",
        "a < b > c &amp; &lt; &#x27; &bogus;",
        "</a></b><a href='x'>",
        "粵港澳大灣區 fintech " * 400,
    ],
)
async def test_hostile_titles_are_accepted_by_telegram(
    store: Store, api: FakeBotApi, transport: TelegramTransport, title: str
) -> None:
    await store.chats.subscribe(1, ["t"])
    summary = "<b>fintech</b> " * 300 + "& <i"
    await save(store, A, candidate(title, "https://a/1?x=1&y=<2>", summary))
    report = await deliverer(store, transport).drain()
    assert report.sent == 1, report.errors
    assert api.sent[0].entities <= 100


async def test_a_later_source_edits_the_sent_alert(
    store: Store, api: FakeBotApi, transport: TelegramTransport
) -> None:
    await store.chats.subscribe(1, ["t"])
    await save(store, A, candidate("香港金管局發出首批穩定幣牌照", "https://a/1"))
    d = deliverer(store, transport)
    assert (await d.drain()).sent == 1
    [first] = api.sent
    await save(store, B, candidate("金管局向首批穩定幣發行人發出牌照", "https://b/1"))
    report = await d.drain()
    assert (report.sent, report.edited) == (0, 1)
    edited = api.message(1, first.message_id)
    assert edited is not None
    assert "also: Outlet B" in edited["text"]
    assert edited["text"].replace(" · also: Outlet B", "") == first.visible
    await save(store, B, candidate("金管局向首批穩定幣發行人發出牌照", "https://b/1?utm_source=x"))
    assert (await d.drain()).edited == 0, "a source already listed edits nothing"
    assert len(api.sent) == 1 and len(api.edits) == 1


async def test_an_alert_too_old_to_edit_is_left_alone(
    store: Store, api: FakeBotApi, transport: TelegramTransport
) -> None:
    await store.chats.subscribe(1, ["t"])
    await save(store, A, candidate("Shenzhen fintech pilot widens", "https://a/1"))
    assert (await deliverer(store, transport).drain()).sent == 1
    await save(store, B, candidate("Shenzhen fintech pilot widens", "https://b/1"))
    later = utcnow() + timedelta(hours=49)
    d = Deliverer(store, transport, clock=lambda: later, tz=UTC)
    report = await d.drain()
    assert (report.sent, report.edited) == (0, 0)
    assert api.edits == [] and len(api.sent) == 1


async def test_a_failed_edit_never_sends_again(
    store: Store, api: FakeBotApi, transport: TelegramTransport
) -> None:
    await store.chats.subscribe(1, ["t"])
    await save(store, A, candidate("Shenzhen fintech pilot widens", "https://a/1"))
    d = deliverer(store, transport)
    await d.drain()
    await save(store, B, candidate("Shenzhen fintech pilot widens", "https://b/1"))
    api.inject("editMessageText", Fault.server_error(), chat_id=1)
    api.inject("editMessageText", Fault.bad_request("message to edit not found"), chat_id=1)
    await d.drain(wait_until=utcnow() + timedelta(seconds=30))
    assert len(api.sent) == 1
    report = await store.outbox.report(utcnow())
    assert report.counts == {"sent": 1} and report.edits_pending == 0


async def test_two_claimers_never_get_the_same_row(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/race.db"
    one, two = await Store.open(url), await Store.open(url)
    try:
        await one.feeds.sync([A])
        for chat in range(1, 41):
            await one.chats.subscribe(chat, ["t"])
        await save(
            one, A, *(candidate(f"Fintech story number {i}", f"https://a/{i}") for i in range(5))
        )
        now = utcnow()
        claims = await asyncio.gather(
            *(s.outbox.claim(now, 7, owner=f"h:{i}") for i in range(30) for s in (one, two))
        )
        ids = [d.id for batch in claims for d in batch]
        assert len(ids) == 200 and len(set(ids)) == 200
    finally:
        await one.close()
        await two.close()


async def test_a_dead_claimers_rows_are_released_at_once(store: Store) -> None:
    await store.chats.subscribe(1, ["t"])
    await save(store, A, candidate("Shenzhen fintech pilot widens", "https://a/1"))
    now = utcnow()
    assert len(await store.outbox.claim(now, 5, owner="host:999999")) == 1
    assert await store.outbox.release_stale(now, timedelta(minutes=5), gone=lambda o: False) == 0
    assert await store.outbox.release_stale(now, timedelta(minutes=5), gone=lambda o: True) == 1
    assert outbox_summary(await store.outbox.report(now)).startswith("outbox: 1 pending")

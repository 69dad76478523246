"""Held alerts released together, through the real python-telegram-bot and the fake Bot API,
on a fixed clock: a mute's end (or /unmute) sends one digest; a digest chat gets one message
per period in its time zone; nothing held is ever lost or sent twice; alerts speak the chat's
language."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import builders
import pytest
from fakebotapi import FakeBotApi, Fault

from bot.delivery import Deliverer
from bot.model import Candidate, Feed
from bot.store import ChannelConfig, Store
from bot.store.digests import DigestChat
from bot.telegram.transport import TelegramTransport, build_application

TOKEN = "123456:AAHdigestdigestdigestdigest_-42"
A = Feed(url="http://127.0.0.1/a.xml", name="Outlet A")
B = Feed(url="http://127.0.0.1/b.xml", name="Outlet B")
CHAT = 1
NOW = datetime(2026, 11, 28, 10, 5, tzinfo=UTC)  # 18:05 in Hong Kong


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = await Store.open(f"sqlite:///{tmp_path}/db.sqlite")
    await s.feeds.sync([A, B])
    await s.chats.subscribe(CHAT, ["t"])
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


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def deliverer(store: Store, transport: TelegramTransport, clock: Clock) -> Deliverer:
    return Deliverer(store, transport, clock=clock, tz=UTC, pacer=builders.unpaced())


def story(n: int, clock: Clock) -> Candidate:
    return builders.candidate(
        f"Stablecoin story {n}", f"https://news.example/{n}", published=clock.now
    )


async def save(store: Store, clock: Clock, *cands: Candidate, feed: Feed = A) -> None:
    await builders.save(store, feed.url, cands, clock.now)


async def test_alerts_held_by_a_mute_arrive_as_one_digest_when_it_ends(
    store: Store, api: FakeBotApi, deliverer: Deliverer, clock: Clock
) -> None:
    await store.prefs.mute(CHAT, clock.now + timedelta(hours=1), kind="private")
    await save(store, clock, *(story(n, clock) for n in range(3)))
    assert (await deliverer.drain()).sent == 0
    clock.now += timedelta(minutes=59)
    assert (await deliverer.drain()).sent == 0
    assert api.sent == [] and await store.outbox.counts() == {"pending": 3}

    clock.now += timedelta(minutes=1)
    assert (await deliverer.drain()).sent == 3
    [digest] = api.sent
    lines = digest.visible.splitlines()
    assert lines[0] == "While muted: 3 alerts"
    assert [line.split(" — ")[0] for line in lines[1:]] == [
        f"• Stablecoin story {n}" for n in range(3)
    ]
    assert digest.entities == 4  # the bold heading and one link per story
    assert await store.outbox.counts() == {"sent": 3}
    assert (await store.prefs.prefs(CHAT)).muted_until is None, "the release clears the mute"

    await save(store, clock, story(3, clock))
    assert (await deliverer.drain()).sent == 1
    assert api.sent[-1].visible.startswith("Stablecoin story 3\nOutlet A"), "one by one again"


async def test_unmute_releases_the_held_alerts_at_once(
    store: Store, api: FakeBotApi, deliverer: Deliverer, clock: Clock
) -> None:
    await store.prefs.mute(CHAT, clock.now + timedelta(days=1), kind="private")
    await save(store, clock, story(1, clock), story(2, clock))
    assert (await deliverer.drain()).sent == 0
    assert await store.prefs.unmute(CHAT, clock.now)
    assert (await deliverer.drain()).sent == 2
    assert len(api.sent) == 1 and api.sent[0].visible.startswith("While muted: 2 alerts")


async def test_a_mute_that_ends_with_nothing_held_is_cleared(
    store: Store, api: FakeBotApi, deliverer: Deliverer, clock: Clock
) -> None:
    await store.prefs.mute(CHAT, clock.now + timedelta(hours=1), kind="private")
    clock.now += timedelta(hours=2)
    assert (await deliverer.drain()).sent == 0
    assert (await store.prefs.prefs(CHAT)).muted_until is None
    await save(store, clock, story(1, clock))
    assert (await deliverer.drain()).sent == 1
    assert "While muted" not in api.sent[0].visible


async def test_a_mute_given_while_the_last_one_is_released_is_kept(
    store: Store, clock: Clock
) -> None:
    ended = clock.now - timedelta(minutes=1)
    await store.prefs.mute(CHAT, ended, kind="private")
    seen = DigestChat(CHAT, ended, None, None)
    [waiting] = await store.digests.waiting(clock.now)
    assert waiting.chat_id == CHAT and waiting.muted_until == ended
    await store.prefs.mute(CHAT, clock.now + timedelta(hours=3), kind="private")  # meanwhile
    await store.digests.claim(seen, clock.now, clock.now)
    assert (await store.prefs.prefs(CHAT)).muted_until == clock.now + timedelta(hours=3)


async def test_hourly_digest_goes_out_on_the_hour(
    store: Store, api: FakeBotApi, deliverer: Deliverer, clock: Clock
) -> None:
    await store.prefs.set_digest(CHAT, "hourly", kind="private")
    await save(store, clock, story(1, clock), story(2, clock))
    clock.now = NOW.replace(minute=59)
    assert (await deliverer.drain()).sent == 0 and api.sent == []

    clock.now = NOW.replace(hour=11, minute=0)
    await save(store, clock, story(3, clock))  # queued at the digest time: in this one
    clock.now += timedelta(seconds=30)
    await save(store, clock, story(4, clock))  # after it: waits for the next hour
    assert (await deliverer.drain()).sent == 3
    [digest] = api.sent
    assert digest.visible.startswith("Digest: 3 alerts\n• Stablecoin story 1 — Outlet A")
    assert "Stablecoin story 4" not in digest.visible
    assert await store.outbox.counts() == {"sent": 3, "pending": 1}

    clock.now = NOW.replace(hour=12, minute=0, second=1)
    assert (await deliverer.drain()).sent == 1
    assert api.sent[-1].visible.startswith("Digest: 1 alert\n• Stablecoin story 4")


async def test_daily_digest_follows_the_chats_time_zone_and_language(
    store: Store, api: FakeBotApi, deliverer: Deliverer, clock: Clock
) -> None:
    await store.prefs.set_digest(CHAT, "daily 08:00", kind="private")
    await store.prefs.set_timezone(CHAT, "Asia/Hong_Kong", kind="private")
    await store.prefs.set_language(CHAT, "zh-hant", kind="private")
    await save(store, clock, story(1, clock))  # 18:05 in Hong Kong
    clock.now = datetime(2026, 11, 28, 23, 59, tzinfo=UTC)  # 07:59 the next day there
    assert (await deliverer.drain()).sent == 0
    clock.now = datetime(2026, 11, 29, 0, 0, tzinfo=UTC)  # 08:00 in Hong Kong
    assert (await deliverer.drain()).sent == 1
    assert api.sent[0].visible == (
        "摘要：1 則提醒\n• Stablecoin story 1 — Outlet A · 11月28日 18:05"
    )


async def test_a_digest_too_long_for_one_message_is_split_and_loses_nothing(
    store: Store, api: FakeBotApi, deliverer: Deliverer, clock: Clock
) -> None:
    await store.prefs.mute(CHAT, clock.now + timedelta(minutes=5), kind="private")
    await save(store, clock, *(story(n, clock) for n in range(70)))
    clock.now += timedelta(minutes=5)
    assert (await deliverer.drain()).sent == 70
    assert [m.visible.splitlines()[0] for m in api.sent] == [
        "While muted: 70 alerts (1/2)",
        "While muted: 70 alerts (2/2)",
    ]
    listed = [line for m in api.sent for line in m.visible.splitlines()[1:]]
    assert [line.split(" — ")[0] for line in listed] == [
        f"• Stablecoin story {n}" for n in range(70)
    ]
    assert all(m.entities < 100 for m in api.sent)
    assert await store.outbox.counts() == {"sent": 70}


async def test_a_failed_digest_is_retried_whole_and_never_lost(
    store: Store, api: FakeBotApi, deliverer: Deliverer, clock: Clock
) -> None:
    await store.prefs.mute(CHAT, clock.now, kind="private")
    await save(store, clock, story(1, clock), story(2, clock))
    clock.now += timedelta(seconds=1)
    api.inject("sendMessage", Fault.server_error(), chat_id=CHAT)
    report = await deliverer.drain()
    assert (report.sent, report.retried) == (0, 2)
    assert await store.outbox.counts() == {"pending": 2}
    assert (await store.prefs.prefs(CHAT)).muted_until is not None, "still releasing"

    clock.now += timedelta(minutes=5)  # past the retry backoff
    assert (await deliverer.drain()).sent == 2
    [digest] = api.sent
    assert digest.visible.startswith("While muted: 2 alerts\n• Stablecoin story 1")
    assert (await store.prefs.prefs(CHAT)).muted_until is None


async def test_a_digest_to_a_chat_that_blocked_the_bot_ends_its_rows_as_dead(
    store: Store, api: FakeBotApi, deliverer: Deliverer, clock: Clock
) -> None:
    await store.prefs.set_digest(CHAT, "hourly", kind="private")
    await save(store, clock, story(1, clock), story(2, clock))
    clock.now = NOW.replace(hour=11, minute=0)
    api.inject("sendMessage", Fault.blocked(), chat_id=CHAT)
    report = await deliverer.drain()
    assert (report.sent, report.dead) == (0, 2)
    assert await store.outbox.counts() == {"dead": 2}


async def test_a_later_source_never_edits_a_digest(
    store: Store, api: FakeBotApi, deliverer: Deliverer, clock: Clock
) -> None:
    await store.prefs.set_digest(CHAT, "hourly", kind="private")
    await save(store, clock, story(1, clock), story(2, clock))
    clock.now = NOW.replace(hour=11, minute=0)
    assert (await deliverer.drain()).sent == 2
    await save(store, clock, story(1, clock), feed=B)  # the same story, another source
    report = await deliverer.drain()
    assert (report.sent, report.edited) == (0, 0)
    assert api.edits == [] and len(api.sent) == 1
    assert (await store.outbox.report(clock.now)).edits_pending == 0


async def test_a_forum_channels_digest_goes_to_its_thread(
    store: Store, api: FakeBotApi, deliverer: Deliverer, clock: Clock
) -> None:
    channel = -1001234
    await store.chats.sync_channels([ChannelConfig(channel, ("t",), thread_id=77)])
    await store.prefs.set_digest(channel, "hourly", kind="channel")
    await save(store, clock, story(1, clock))
    clock.now = NOW.replace(hour=11, minute=0)
    await deliverer.drain()
    digest = next(m for m in api.sent if m.chat_id == channel)
    assert digest.message_thread_id == 77 and digest.visible.startswith("Digest: 1 alert")


async def test_alerts_speak_the_chats_language_and_show_its_time(
    store: Store, api: FakeBotApi, deliverer: Deliverer, clock: Clock
) -> None:
    await store.prefs.set_language(CHAT, "zh-hans", kind="private")
    await store.prefs.set_timezone(CHAT, "Asia/Shanghai", kind="private")
    await save(store, clock, story(1, clock))
    assert (await deliverer.drain()).sent == 1
    assert "Outlet A · 2026-11-28 18:05 CST" in api.sent[0].visible
    await save(store, clock, story(1, clock), feed=B)
    assert (await deliverer.drain()).edited == 1
    edited = api.message(CHAT, api.sent[0].message_id)
    assert edited is not None and "另见：Outlet B" in edited["text"]

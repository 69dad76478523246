"""The outbox drainer with a fake Transport (edge cases); the real python-telegram-bot path is
covered end to end in test_e2e."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import builders
import pytest
from sqlalchemy import update

from bot.delivery import GIVE_UP_AFTER, Deliverer
from bot.errors import DeliveryError
from bot.model import Candidate, Entry, Feed, Hit
from bot.pacing import MARGIN, Limit, Pacer
from bot.store import Store
from bot.store.schema import chats

FEED = Feed(url="http://127.0.0.1/feed.xml", name="Outlet")


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


class FakeTransport:
    """Answers each send from a script of outcomes per chat; records what was sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[int, str, int | None]] = []
        self.script: dict[int, list[DeliveryError]] = {}

    async def send(self, chat_id: int, html: str, *, thread_id: int | None = None) -> int:
        outcomes = self.script.get(chat_id)
        if outcomes:
            raise outcomes.pop(0)
        self.sent.append((chat_id, html, thread_id))
        return len(self.sent)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = await Store.open(f"sqlite:///{tmp_path}/db.sqlite")
    await s.feeds.sync([FEED])
    yield s
    await s.close()


async def queue(store: Store, clock: Clock, *titles: str) -> None:
    cands = [
        Candidate(
            entry=Entry(id=t, link=f"http://x/{i}", title=t, summary="stablecoin news"),
            key=t,
            canonical_url=f"http://x/{i}",
            title_key=t.replace(" ", ""),
            alert=True,
            hits=(Hit("t", ("stablecoin",)),),
        )
        for i, t in enumerate(titles)
    ]
    await builders.save(store, FEED.url, cands, clock.now)


def fast_pacer() -> Pacer:
    fast = Limit(1000, 1.0)
    return Pacer(overall=fast, private=fast, group=fast)


def deliverer(store: Store, transport: FakeTransport, clock: Clock) -> Deliverer:
    return Deliverer(store, transport, clock=clock, tz=UTC, pacer=fast_pacer())


async def test_sends_renders_and_marks_sent(store: Store) -> None:
    clock, transport = Clock(), FakeTransport()
    await store.chats.subscribe(1, ["t"])
    await store.chats.subscribe(2, ["t"])
    await queue(store, clock, "Stablecoin licences granted")
    report = await deliverer(store, transport, clock).drain()
    assert report.sent == 2
    assert sorted(chat for chat, _, _ in transport.sent) == [1, 2]
    assert '<a href="http://x/0">' in transport.sent[0][1]
    assert await store.outbox.counts() == {"sent": 2}
    assert (await deliverer(store, transport, clock).drain()).sent == 0


async def test_transient_error_is_retried_later_not_lost(store: Store) -> None:
    clock, transport = Clock(), FakeTransport()
    await store.chats.subscribe(1, ["t"])
    await queue(store, clock, "Stablecoin licences granted")
    transport.script[1] = [DeliveryError("HTTP 502 Bad Gateway")]
    report = await deliverer(store, transport, clock).drain()
    assert (report.sent, report.retried) == (0, 1)
    assert await store.outbox.counts() == {"pending": 1}
    clock.now += timedelta(seconds=5)
    assert (await deliverer(store, transport, clock).drain()).sent == 1


async def test_retry_after_is_honoured_within_a_waiting_drain(store: Store) -> None:
    clock, transport = Clock(), FakeTransport()
    await store.chats.subscribe(1, ["t"])
    await queue(store, clock, "Stablecoin licences granted")
    transport.script[1] = [DeliveryError("Flood control", retry_after=0.2)]
    d = deliverer(store, transport, clock)
    report = await d.drain()
    assert report.sent == 0
    clock.now += timedelta(seconds=1)
    report = await d.drain(wait_until=clock.now + timedelta(minutes=1))
    assert report.sent == 1


async def test_forbidden_deactivates_chat(store: Store) -> None:
    clock, transport = Clock(), FakeTransport()
    await store.chats.subscribe(1, ["t"])
    await queue(store, clock, "Stablecoin licences granted", "e-CNY pilot widened")
    transport.script[1] = [
        DeliveryError("Forbidden: bot was blocked", permanent=True, chat_gone=True)
    ]
    report = await deliverer(store, transport, clock).drain()
    assert report.sent == 0
    assert await store.outbox.counts() == {"dead": 2}


async def test_bad_request_is_dead_with_reason(store: Store) -> None:
    clock, transport = Clock(), FakeTransport()
    await store.chats.subscribe(1, ["t"])
    await store.chats.subscribe(2, ["t"])
    await queue(store, clock, "Stablecoin licences granted")
    transport.script[1] = [DeliveryError("Bad Request: chat not found", permanent=True)]
    report = await deliverer(store, transport, clock).drain()
    assert (report.sent, report.dead) == (1, 1)
    assert await store.outbox.counts() == {"sent": 1, "dead": 1}


async def test_migrated_group_is_followed(store: Store) -> None:
    clock, transport = Clock(), FakeTransport()
    await store.chats.subscribe(-5, ["t"])
    await queue(store, clock, "Stablecoin licences granted")
    transport.script[-5] = [DeliveryError("migrated", migrated_to=-1005)]
    report = await deliverer(store, transport, clock).drain()
    assert report.sent == 1
    assert transport.sent[0][0] == -1005
    assert await store.chats.subscriptions(-1005) == ["t"]


async def test_transient_failures_are_retried_until_the_row_is_too_old(store: Store) -> None:
    clock, transport = Clock(), FakeTransport()
    await store.chats.subscribe(1, ["t"])
    await queue(store, clock, "Stablecoin licences granted")
    transport.script[1] = [DeliveryError("HTTP 500")] * 1000
    d = deliverer(store, transport, clock)
    for _ in range(30):  # a day and more of an outage: still pending, not lost
        await d.drain()
        clock.now += timedelta(hours=1)
    assert await store.outbox.counts() == {"pending": 1}
    clock.now += GIVE_UP_AFTER
    await d.drain()
    assert await store.outbox.counts() == {"dead": 1}
    assert transport.sent == []


async def test_a_revoked_token_holds_everything_and_loses_nothing(store: Store) -> None:
    clock, transport = Clock(), FakeTransport()
    for chat in (1, 2, 3):
        await store.chats.subscribe(chat, ["t"])
        transport.script[chat] = [DeliveryError("token rejected", bot_wide=True, retry_after=300)]
    await queue(store, clock, "Stablecoin licences granted")
    report = await deliverer(store, transport, clock).drain()
    assert report.dead == 0
    assert await store.outbox.counts() == {"pending": 3}


class StopDuringSend(FakeTransport):
    """Sets ``stop`` during the first send, as SIGTERM would."""

    def __init__(self, stop: asyncio.Event) -> None:
        super().__init__()
        self.stop = stop

    async def send(self, chat_id: int, html: str, *, thread_id: int | None = None) -> int:
        self.stop.set()
        await asyncio.sleep(0.05)
        return await super().send(chat_id, html, thread_id=thread_id)


async def test_stop_finishes_in_flight_sends_and_hands_the_rest_back(store: Store) -> None:
    clock, stop = Clock(), asyncio.Event()
    transport = StopDuringSend(stop)
    await store.chats.subscribe(1, ["t"])
    await queue(store, clock, *(f"Stablecoin story number {i}" for i in range(5)))
    one_slot = Deliverer(store, transport, clock=clock, tz=UTC, pacer=fast_pacer(), concurrency=1)
    report = await one_slot.drain(stop=stop)
    assert report.sent == 1, "the send in flight when stop came finishes and is recorded"
    assert await store.outbox.counts() == {"sent": 1, "pending": 4}


class FlakyOutbox:
    """Wraps the real outbox; ``mark_sent`` fails the first ``failures`` times."""

    def __init__(self, outbox: Any, failures: int) -> None:
        self._outbox = outbox
        self.failures = failures

    def __getattr__(self, name: str) -> Any:
        return getattr(self._outbox, name)

    async def mark_sent(self, *args: Any, **kwargs: Any) -> None:
        if self.failures:
            self.failures -= 1
            raise OSError("database is locked")
        await self._outbox.mark_sent(*args, **kwargs)


async def test_a_failure_to_record_a_send_never_sends_it_again(store: Store) -> None:
    clock, transport = Clock(), FakeTransport()
    await store.chats.subscribe(1, ["t"])
    await queue(store, clock, "Stablecoin licences granted")
    store.outbox = FlakyOutbox(store.outbox, failures=2)  # type: ignore[assignment]

    async def no_sleep(seconds: float) -> None:
        return None

    d = Deliverer(store, transport, clock=clock, tz=UTC, pacer=fast_pacer(), sleep=no_sleep)
    report = await d.drain()
    assert report.sent == 1 and len(transport.sent) == 1
    assert await store.outbox.counts() == {"sent": 1}
    clock.now += timedelta(hours=1)
    await d.drain()
    assert len(transport.sent) == 1


async def test_an_unsubscribed_chat_gets_nothing_already_queued(store: Store) -> None:
    clock, transport = Clock(), FakeTransport()
    await store.chats.subscribe(7, ["t"])
    await queue(store, clock, "Stablecoin licences granted", "e-CNY pilot widened")
    await store.chats.unsubscribe_all(7)
    report = await deliverer(store, transport, clock).drain()
    assert report.sent == 0 and transport.sent == []
    assert await store.outbox.counts() == {"dead": 2}


async def test_only_chat_limits_delivery_to_one_chat(store: Store) -> None:
    clock, transport = Clock(), FakeTransport()
    await store.chats.subscribe(0, ["t"])
    await store.chats.subscribe(4242, ["t"])
    await queue(store, clock, "Stablecoin licences granted")
    d = Deliverer(store, transport, clock=clock, tz=UTC, pacer=fast_pacer(), only_chat=0)
    assert (await d.drain()).sent == 1
    assert [chat for chat, _, _ in transport.sent] == [0]
    assert await store.outbox.counts() == {"sent": 1, "pending": 1}


async def test_a_chat_out_of_budget_does_not_hold_up_the_others(store: Store) -> None:
    clock, transport = Clock(), FakeTransport()
    await store.chats.subscribe(-100, ["t"])
    await store.chats.subscribe(5, ["t"])
    await queue(store, clock, *(f"Stablecoin story number {i}" for i in range(3)))
    lenient = Limit(1000, 1.0)
    pacer = Pacer(overall=lenient, private=lenient, group=Limit(1, 60.0))
    report = await Deliverer(store, transport, clock=clock, tz=UTC, pacer=pacer).drain()
    sent_to = [chat for chat, _, _ in transport.sent]
    assert sent_to.count(5) == 3, "the private chat got all three without waiting"
    assert sent_to.count(-100) == 1, "the group got one; the others wait for its budget"
    assert report.sent == 4
    assert await store.outbox.counts() == {"sent": 4, "pending": 2}


async def test_pacing_spaces_sends_to_one_private_chat(store: Store) -> None:
    clock, transport = Clock(), FakeTransport()
    await store.chats.subscribe(1, ["t"])
    await queue(store, clock, "Stablecoin licences granted", "e-CNY pilot widened")
    slept: list[float] = []
    ticks = iter(float(i) * 0.01 for i in range(1000))

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    d = Deliverer(store, transport, clock=clock, tz=UTC, monotonic=lambda: next(ticks), sleep=sleep)
    report = await d.drain()
    assert report.sent == 2
    assert slept and slept[0] == pytest.approx(0.99 + MARGIN, abs=0.05)


async def mute(store: Store, chat_id: int, *, until: datetime) -> None:
    """As /mute does (bot.store.prefs), without the chat commands."""
    async with store.engine.begin() as conn:
        await conn.execute(
            update(chats).where(chats.c.chat_id == chat_id).values(muted_until=until)
        )


async def test_a_muted_chat_gets_its_alerts_when_the_mute_ends(store: Store) -> None:
    clock, transport = Clock(), FakeTransport()
    await store.chats.subscribe(1, ["t"])
    await mute(store, 1, until=clock.now + timedelta(hours=1))
    await queue(store, clock, "Stablecoin licences granted")
    d = deliverer(store, transport, clock)
    assert (await d.drain()).sent == 0
    assert await store.outbox.counts() == {"pending": 1}
    clock.now += timedelta(hours=1)
    assert (await d.drain()).sent == 1


async def test_a_waiting_drain_does_not_spin_on_a_muted_chat(store: Store) -> None:
    clock, transport = Clock(), FakeTransport()
    await store.chats.subscribe(1, ["t"])
    await mute(store, 1, until=clock.now + timedelta(hours=1))
    await queue(store, clock, "Stablecoin licences granted")
    report = await deliverer(store, transport, clock).drain(
        wait_until=clock.now + timedelta(minutes=5)
    )
    assert report.sent == 0 and report.pending == 1

"""Two senders sharing one database (two instances, or a restart overlapping the old process)
never send a row twice and leave none behind: single alerts, a mute's release and scheduled
digests, on SQLite and on a real PostgreSQL (where the claim also skips locked rows)."""

from __future__ import annotations

import asyncio
import itertools
import random
import re
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import builders
import pgserver
import pytest
from pgserver import PgServer

from bot.delivery import Deliverer
from bot.model import Feed
from bot.store import Store

FEED = Feed(url="http://127.0.0.1/a.xml", name="Outlet A")
NOW = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
STORIES = 25
PLAIN, MUTED, DIGEST = (1, 2, 3, 4, 5, 6), (101, 102, 103), (201, 202, 203)


@pytest.fixture(scope="module")
def postgres() -> Iterator[PgServer]:
    server = pgserver.start()
    if isinstance(server, str):
        pytest.skip(server)
    yield server
    server.stop()


_databases = itertools.count(1)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/newsbot.db"
    server: PgServer = request.getfixturevalue("postgres")
    return await server.create_database(f"newsbot_concurrency_{next(_databases)}")


@pytest.fixture
async def stores(url: str) -> AsyncIterator[tuple[Store, Store]]:
    first = await Store.open(url)
    second = await Store.open(url)
    yield first, second
    await second.close()
    await first.close()


class Recorder:
    """A transport that yields to the other sender around every send, and records it."""

    def __init__(self, rng: random.Random) -> None:
        self.sent: list[tuple[int, str]] = []
        self._rng = rng

    async def send(self, chat_id: int, html: str, *, thread_id: int | None = None) -> int:
        await asyncio.sleep(self._rng.random() / 1000)
        self.sent.append((chat_id, html))
        return len(self.sent)

    async def edit(self, chat_id: int, message_id: int, html: str) -> None:
        raise AssertionError("nothing here is edited")


async def test_two_senders_send_every_row_exactly_once(stores: tuple[Store, Store]) -> None:
    first = stores[0]
    await first.feeds.sync([FEED])
    for chat in (*PLAIN, *MUTED, *DIGEST):
        await first.chats.subscribe(chat, ["t"])
    for chat in MUTED:
        await first.prefs.mute(chat, NOW - timedelta(minutes=1), kind="private")
    for chat in DIGEST:
        await first.prefs.set_digest(chat, "hourly", kind="private")
    queued = NOW - timedelta(minutes=30)  # before the 10:00 digest
    cands = [
        builders.candidate(f"Story {n}", f"https://news.example/{n}", published=queued)
        for n in range(STORIES)
    ]
    await builders.save(first, FEED.url, cands, queued)

    rng = random.Random(7)
    recorders = [Recorder(rng), Recorder(rng)]
    senders = [
        Deliverer(
            store,
            recorder,
            clock=lambda: NOW,
            tz=UTC,
            pacer=builders.unpaced(),
            batch=8,
        )
        for store, recorder in zip(stores, recorders, strict=True)
    ]
    reports = await asyncio.gather(*(s.drain() for s in senders))

    rows = len(PLAIN + MUTED + DIGEST) * STORIES
    assert sum(r.sent for r in reports) == rows
    assert await first.outbox.counts() == {"sent": rows}
    listed: Counter[tuple[int, str]] = Counter()
    messages: Counter[int] = Counter()
    for chat, html in (m for r in recorders for m in r.sent):
        messages[chat] += 1
        for title in re.findall(r">(Story \d+)<", html):
            listed[chat, title] += 1
    every = {(chat, f"Story {n}") for chat in (*PLAIN, *MUTED, *DIGEST) for n in range(STORIES)}
    assert set(listed) == every and set(listed.values()) == {1}, "each story once per chat"
    assert all(messages[chat] == STORIES for chat in PLAIN)
    assert all(messages[chat] == 1 for chat in (*MUTED, *DIGEST)), "one digest each"
    assert [(await first.prefs.prefs(chat)).muted_until for chat in MUTED] == [None] * 3

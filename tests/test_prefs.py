"""Chat preferences and /recent's query against a real SQLite store in tmp_path."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import builders
import pytest
from sqlalchemy import select

from bot.model import Candidate, Feed
from bot.store import Store
from bot.store.engine import Database
from bot.store.prefs import ChatPrefs, PrefStore
from bot.store.schema import chats

NOW = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
FEED = Feed(url="http://127.0.0.1/a.xml", name="Outlet A")


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = await Store.open(f"sqlite:///{tmp_path}/db")
    await s.feeds.sync([FEED])
    yield s
    await s.close()


@pytest.fixture
def prefs(store: Store) -> PrefStore:
    return PrefStore(Database(store.engine))


async def test_unknown_chat_has_no_preferences(prefs: PrefStore) -> None:
    assert await prefs.prefs(1001) == ChatPrefs()


async def test_settings_are_stored_and_create_the_chat(store: Store, prefs: PrefStore) -> None:
    await prefs.set_language(-100, "zh-hant", kind="supergroup")
    await prefs.set_timezone(-100, "Europe/London", kind="supergroup")
    await prefs.set_digest(-100, "daily 08:00", kind="supergroup")
    await prefs.mute(-100, NOW + timedelta(hours=2), kind="supergroup")
    assert await prefs.prefs(-100) == ChatPrefs(
        "zh-hant", "Europe/London", NOW + timedelta(hours=2), "daily 08:00"
    )
    async with store.engine.connect() as conn:
        row = (await conn.execute(select(chats).where(chats.c.chat_id == -100))).one()
    assert row.kind == "supergroup" and row.active
    await prefs.set_digest(-100, None, kind="supergroup")
    await prefs.set_timezone(-100, None, kind="supergroup")
    after = await prefs.prefs(-100)
    assert after.digest is None and after.timezone is None and after.language == "zh-hant"


async def test_settings_keep_the_chats_other_columns(store: Store, prefs: PrefStore) -> None:
    await store.chats.upsert_chat(1001, kind="private", language="en", title="Tess")
    await store.chats.subscribe(1001, ["t"])
    await prefs.set_timezone(1001, "UTC", kind="private")
    assert (await prefs.prefs(1001)).language == "en"
    assert await store.chats.subscriptions(1001) == ["t"]


async def test_unmute_ends_a_running_mute_at_now(prefs: PrefStore) -> None:
    assert await prefs.unmute(1001, NOW) is False
    await prefs.mute(1001, NOW + timedelta(hours=1), kind="private")
    assert await prefs.unmute(1001, NOW) is True
    assert (await prefs.prefs(1001)).muted_until == NOW
    assert await prefs.unmute(1001, NOW + timedelta(minutes=1)) is False, "already over"


def _candidate(title: str, link: str, topics: Sequence[str], published: datetime | None):
    return builders.candidate(title, link, summary="sum", published=published, topics=topics)


async def _save(store: Store, at: datetime, *cands: Candidate) -> None:
    await store.stories.save_cycle(
        FEED.url,
        cands,
        now=at,
        next_fetch=at,
        etag=None,
        last_modified=None,
        content_hash=None,
    )


async def test_recent_returns_the_chats_topics_newest_first(store: Store, prefs: PrefStore) -> None:
    published = NOW - timedelta(days=2)
    await _save(store, NOW - timedelta(hours=3), _candidate("A one", "http://x/1", ["a"], None))
    await _save(
        store, NOW - timedelta(hours=2), _candidate("B only", "http://x/2", ["b"], published)
    )
    await _save(
        store, NOW - timedelta(hours=1), _candidate("A and C", "http://x/3", ["a", "c"], None)
    )
    await store.chats.subscribe(1001, ["a", "c"])
    stories = await prefs.recent(1001, 10)
    assert [s.title for s in stories] == ["A and C", "A one"]
    assert stories[0].topics == ("a", "c") and stories[1].topics == ("a",)
    assert stories[0].published == NOW - timedelta(hours=1), "undated: when first seen"
    assert [s.title for s in await prefs.recent(1001, 1)] == ["A and C"]

    await store.chats.subscribe(1002, ["*"])
    everything = await prefs.recent(1002, 10)
    assert [s.title for s in everything] == ["A and C", "B only", "A one"]
    assert everything[1].published == published
    assert await prefs.recent(1003, 10) == []

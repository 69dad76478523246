"""The store against a real SQLite database in tmp_path, and the same tests on PostgreSQL."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import builders
import pgserver
import pytest
from pgserver import PgServer

from bot.model import Candidate, Feed
from bot.store import ChannelConfig, Store

NOW = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
FEED_A = Feed(url="http://127.0.0.1/a.xml", name="Outlet A")
FEED_B = Feed(url="http://127.0.0.1/b.xml", name="Outlet B")
FEED_C = Feed(url="http://127.0.0.1/c.xml", name="Outlet C")


@pytest.fixture(scope="module")
def postgres() -> Iterator[PgServer]:
    server = pgserver.start()
    if isinstance(server, str):
        pytest.skip(server)
    yield server
    server.stop()


_databases = itertools.count(1)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/state/newsbot.db"
    else:
        server: PgServer = request.getfixturevalue("postgres")
        url = await server.create_database(f"newsbot_test_{next(_databases)}")
    s = await Store.open(url)
    await s.feeds.sync([FEED_A, FEED_B, FEED_C])
    yield s
    await s.close()


def candidate(title: str, link: str, *, alert: bool = True, topics: tuple[str, ...] = ("t",)):
    return builders.candidate(title, link, published=NOW, topics=topics, alert=alert)


async def save(store: Store, feed: Feed, *cands: Candidate, now: datetime = NOW):
    return await store.stories.save_cycle(
        feed.url,
        cands,
        now=now,
        next_fetch=now,
        etag='"e1"',
        last_modified=None,
        content_hash="h",
    )


async def test_creates_schema_in_a_new_state_dir(store: Store, tmp_path: Path) -> None:
    if store.engine.dialect.name == "sqlite":
        assert (tmp_path / "state" / "newsbot.db").exists()
    assert (await store.feeds.state(FEED_A.url)).first_fetch_done is False


async def test_cycle_records_entries_and_queues_one_row_per_follower(store: Store) -> None:
    await store.chats.subscribe(1001, ["t"])
    await store.chats.sync_channels([ChannelConfig(-100, ("*",))])
    await store.chats.subscribe(1002, ["other"])
    matched, queued = await save(store, FEED_A, candidate("Stablecoin bill passes", "http://x/1"))
    assert (matched, queued) == (1, 2)
    state = await store.feeds.state(FEED_A.url)
    assert state.first_fetch_done and state.etag == '"e1"'
    assert await store.feeds.seen_keys(FEED_A.url, ["http://x/1", "http://x/2"]) == {"http://x/1"}


async def test_same_story_from_another_feed_is_not_queued_again(store: Store) -> None:
    await store.chats.subscribe(1001, ["t"])
    await save(store, FEED_A, candidate("Stablecoin bill passes", "http://x/1?utm_source=a"))
    _, queued = await save(store, FEED_B, candidate("Other words", "http://X/1#top"))
    assert queued == 0
    _, queued = await save(store, FEED_C, candidate("Stablecoin bill passes!", "http://y/9"))
    assert queued == 0
    [delivery] = await store.outbox.claim(NOW, 10)
    assert delivery.story.sources == ("Outlet A", "Outlet B", "Outlet C")


async def test_title_key_joins_only_within_window(store: Store) -> None:
    await store.chats.subscribe(1001, ["t"])
    await save(store, FEED_A, candidate("Hong Kong stocks close lower", "http://x/1"))
    later = NOW + timedelta(days=4)
    _, queued = await save(
        store, FEED_B, candidate("Hong Kong stocks close lower", "http://x/2"), now=later
    )
    assert queued == 1


async def test_a_repeated_title_in_one_feed_is_a_new_story(store: Store) -> None:
    await store.chats.subscribe(1001, ["t"])
    await save(store, FEED_A, candidate("Hong Kong stocks close lower", "http://x/1"))
    _, queued = await save(store, FEED_A, candidate("Hong Kong stocks close lower", "http://x/2"))
    assert queued == 1, "the same headline on another day in the same feed is news again"
    _, queued = await save(store, FEED_B, candidate("Hong Kong stocks close lower", "http://y/7"))
    assert queued == 0, "another outlet's copy joins the story"


async def test_backfill_entries_are_seen_but_not_queued(store: Store) -> None:
    await store.chats.subscribe(1001, ["t"])
    matched, queued = await save(
        store, FEED_A, candidate("Old news item here", "http://x/1", alert=False)
    )
    assert (matched, queued) == (1, 0)


async def test_claim_is_compare_and_set_and_marks(store: Store) -> None:
    await store.chats.subscribe(1001, ["t"])
    await save(store, FEED_A, candidate("Stablecoin bill passes", "http://x/1"))
    [d] = await store.outbox.claim(NOW, 10)
    assert d.chat_id == 1001 and d.story.topics == ("t",) and d.story.keywords == ("kw",)
    assert await store.outbox.claim(NOW, 10) == []
    await store.outbox.mark_retry(d.id, "HTTP 502", NOW + timedelta(seconds=5))
    assert await store.outbox.claim(NOW, 10) == []
    [again] = await store.outbox.claim(NOW + timedelta(seconds=5), 10)
    assert again.attempts == 1
    await store.outbox.mark_sent(again.id, 77, NOW)
    assert await store.outbox.counts() == {"sent": 1}
    assert await store.outbox.next_due() is None


async def test_stale_claims_are_released(store: Store) -> None:
    await store.chats.subscribe(1001, ["t"])
    await save(store, FEED_A, candidate("Stablecoin bill passes", "http://x/1"))
    await store.outbox.claim(NOW, 10)
    assert await store.outbox.release_stale(NOW + timedelta(seconds=30), timedelta(minutes=5)) == 0
    assert await store.outbox.release_stale(NOW + timedelta(minutes=6), timedelta(minutes=5)) == 1
    assert len(await store.outbox.claim(NOW + timedelta(minutes=6), 10)) == 1


async def test_deactivated_chat_ends_its_rows_and_gets_nothing_more(store: Store) -> None:
    await store.chats.subscribe(1001, ["t"])
    await save(store, FEED_A, candidate("Stablecoin bill passes", "http://x/1"))
    assert await store.chats.deactivate(1001, "Forbidden: bot was blocked by the user") == 1
    _, queued = await save(store, FEED_A, candidate("Another fintech story", "http://x/2"))
    assert queued == 0
    assert (await store.outbox.counts()) == {"dead": 1}


async def test_migrated_group_keeps_subscriptions_and_queue(store: Store) -> None:
    await store.chats.subscribe(-5, ["t"])
    await save(store, FEED_A, candidate("Stablecoin bill passes", "http://x/1"))
    await store.chats.migrate(-5, -1005)
    assert await store.chats.subscriptions(-1005) == ["t"]
    [d] = await store.outbox.claim(NOW, 10)
    assert d.chat_id == -1005


async def test_subscriptions(store: Store) -> None:
    assert await store.chats.subscribe(7, ["a", "b", "a"]) == ["a", "b"]
    assert await store.chats.subscribe(7, ["b", "c"]) == ["c"]
    assert await store.chats.unsubscribe(7, ["a", "zzz"]) == ["a"]
    assert await store.chats.subscriptions(7) == ["b", "c"]
    assert await store.chats.unsubscribe_all(7) == 2
    assert await store.chats.subscriptions(7) == []


async def test_channels_follow_config(store: Store) -> None:
    await store.chats.sync_channels([ChannelConfig(-100, ("a", "b"), thread_id=3)])
    assert await store.chats.subscriptions(-100) == ["a", "b"]
    await store.chats.sync_channels([])
    assert await store.chats.subscriptions(-100) == []


async def test_feed_errors_and_health(store: Store) -> None:
    await store.feeds.record_error(FEED_A.url, "HTTP 500", now=NOW, next_fetch=NOW)
    await store.feeds.record_error(FEED_A.url, "HTTP 502", now=NOW, next_fetch=NOW)
    await save(store, FEED_B, candidate("Stablecoin bill passes", "http://x/1"))
    health = {h.name: h for h in await store.feeds.health()}
    assert health["Outlet A"].consecutive_errors == 2
    assert health["Outlet A"].last_error == "HTTP 502"
    assert health["Outlet B"].entries == 1 and health["Outlet B"].hits == 1
    assert health["Outlet B"].status == "ok"
    await store.feeds.sync([FEED_B])
    assert [h.name for h in await store.feeds.health()] == ["Outlet B"]

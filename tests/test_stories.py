"""Cross-feed dedup through the store, with a restart (a new Store on the same database)
between the feeds: tracking parameters, a repeated title, a reworded Chinese title."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import builders
import pytest

from bot.dedup import TitleIndex, near_duplicate, title_signature
from bot.model import Candidate, Feed
from bot.store import Store

NOW = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
FEEDS = [Feed(url=f"http://127.0.0.1/{n}.xml", name=f"Outlet {n}") for n in "ABC"]
A, B, C = FEEDS

Opener = Callable[[], AsyncIterator[Store]]


def candidate(title: str, link: str) -> Candidate:
    return builders.candidate(title, link, published=NOW)


class Db:
    """Each ``save`` opens a new Store on the same file, as a restarted newsbot would."""

    def __init__(self, path: Path) -> None:
        self.url = f"sqlite:///{path}/newsbot.db"

    async def save(self, feed: Feed, cand: Candidate, *, now: datetime = NOW) -> int:
        store = await Store.open(self.url)
        try:
            await store.feeds.sync(FEEDS)
            await store.chats.subscribe(1001, ["t"])
            _, queued = await store.stories.save_cycle(
                feed.url,
                [cand],
                now=now,
                next_fetch=now,
                etag=None,
                last_modified=None,
                content_hash=None,
            )
            return queued
        finally:
            await store.close()

    async def sources(self) -> list[tuple[str, ...]]:
        store = await Store.open(self.url)
        try:
            return [d.story.sources for d in await store.outbox.claim(NOW + timedelta(days=9), 50)]
        finally:
            await store.close()


@pytest.fixture
def db(tmp_path: Path) -> Db:
    return Db(tmp_path)


async def test_one_story_via_three_feeds_with_tracking_parameters(db: Db) -> None:
    title = "Stablecoin licences granted to two issuers"
    assert await db.save(A, candidate(title, "https://News.example:443/a?id=7&utm_source=rss")) == 1
    assert (
        await db.save(B, candidate("Other words", "https://news.example/a?fbclid=x&id=7#top")) == 0
    )
    assert await db.save(C, candidate("More words", "https://news.example/a?gclid=1&id=7")) == 0
    assert await db.sources() == [("Outlet A", "Outlet B", "Outlet C")]


async def test_only_the_title_repeated(db: Db) -> None:
    assert await db.save(A, candidate("HKMA grants first stablecoin licences", "https://a/1")) == 1
    assert await db.save(B, candidate("HKMA grants first stablecoin licences!", "https://b/9")) == 0
    assert await db.sources() == [("Outlet A", "Outlet B")]


async def test_a_reworded_chinese_title_joins(db: Db) -> None:
    assert await db.save(A, candidate("香港金管局發出首批穩定幣牌照", "https://a/1")) == 1
    assert await db.save(B, candidate("金管局向首批穩定幣發行人發出牌照", "https://b/2")) == 0
    assert await db.save(C, candidate("金管局向首批稳定币发行人发出牌照", "https://c/3")) == 0
    assert await db.sources() == [("Outlet A", "Outlet B", "Outlet C")]


async def test_a_near_duplicate_joins_only_across_feeds_and_within_the_window(db: Db) -> None:
    assert await db.save(A, candidate("香港金管局發出首批穩定幣牌照", "https://a/1")) == 1
    assert await db.save(A, candidate("金管局向首批穩定幣發行人發出牌照", "https://a/2")) == 1
    later = NOW + timedelta(hours=73)
    assert (
        await db.save(B, candidate("金管局向首批穩定幣發行人發出牌照", "https://b/2"), now=later)
        == 1
    )


async def test_different_news_in_the_same_words_stays_apart(db: Db) -> None:
    assert await db.save(A, candidate("恒指收市跌200點 成交額千億", "https://a/1")) == 1
    assert await db.save(B, candidate("恒指收市跌350點 成交額千億", "https://b/1")) == 1


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("香港金管局發出首批穩定幣牌照", "金管局向首批穩定幣發行人發出牌照", True),
        ("港交所11月15日推出虛擬資產指數系列", "港交所將於11月15日推出虛擬資產指數系列", True),
        ("美元指數升約0.4%　重上109水平", "美元指數升0.4%重返109水平", True),
        ("恒指收市跌200點", "恒指收市跌350點", False),
        ("1號風球料日間維持", "1號風球料晚間維持", False),
        ("Hong Kong stocks close lower", "Hong Kong stocks close higher", False),
        ("快訊", "快訊", False),
    ],
)
def test_near_duplicate(a: str, b: str, same: bool) -> None:
    assert near_duplicate(a, b) is same


def test_title_index_keeps_only_titles_long_enough_to_match() -> None:
    index = TitleIndex()
    index.add(1, "快訊", 0.0)  # 1 shingle: can never share MIN_SHARED_SHINGLES with anything
    index.add(2, "香港金管局發出首批穩定幣牌照", 0.0)
    assert 1 not in index and 2 in index
    found = index.similar(title_signature("香港金管局发出首批稳定币牌照"))
    assert [story_id for _, story_id in found] == [2]

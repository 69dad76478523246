"""Test values built the way the pipeline builds them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from bot.dedup import canonical_url, entry_key, title_key
from bot.model import Candidate, Entry, Hit
from bot.pacing import Limit, Pacer
from bot.store import Store


def candidate(
    title: str,
    link: str,
    *,
    summary: str = "s",
    published: datetime | None = None,
    topics: Sequence[str] = ("t",),
    keywords: tuple[str, ...] = ("kw",),
    alert: bool = True,
) -> Candidate:
    """A new entry with its keys computed as ``pipeline`` computes them."""
    entry = Entry(id=None, link=link, title=title, summary=summary, published=published)
    return Candidate(
        entry=entry,
        key=entry_key(entry),
        canonical_url=canonical_url(link),
        title_key=title_key(title),
        alert=alert,
        hits=tuple(Hit(t, keywords) for t in topics),
    )


async def save(store: Store, feed_url: str, cands: Sequence[Candidate], now: datetime) -> None:
    """A feed cycle's new entries stored as the pipeline stores them (no HTTP cache state)."""
    await store.stories.save_cycle(
        feed_url,
        cands,
        now=now,
        next_fetch=now,
        etag=None,
        last_modified=None,
        content_hash=None,
    )


def unpaced() -> Pacer:
    """A pacer whose limits a test never reaches: sends go out at once."""
    fast = Limit(10_000, 1.0)
    return Pacer(overall=fast, private=fast, group=fast, margin=0)

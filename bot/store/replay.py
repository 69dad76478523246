"""Read-only queries for ``newsbot rules test --since``: stored entries with their old hits.

An entry's old hits are the ``hits`` rows of the story it joined (hits are kept per story).
Entries come in batches by id (keyset pagination), so a long replay holds one batch in memory
and never a long transaction. Nothing here writes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot.store.schema import entries, feeds, hits


@dataclass(frozen=True, slots=True)
class StoredEntry:
    """An entry as stored (title and summary only: content and tags are not kept) with the
    feed that carried it and the topics its story matched then."""

    id: int
    story_id: int
    feed_url: str
    feed_name: str
    feed_tags: tuple[str, ...]
    title: str
    link: str
    summary: str
    first_seen: datetime
    alerted: bool
    old_topics: tuple[str, ...]


class ReplayQueries:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def count(self, since: datetime) -> int:
        """How many entries were first seen at or after ``since``."""
        query = select(func.count()).select_from(entries).where(entries.c.first_seen >= since)
        async with self._engine.connect() as conn:
            return int(await conn.scalar(query) or 0)

    async def batches(
        self, since: datetime, *, size: int = 500
    ) -> AsyncIterator[list[StoredEntry]]:
        """Entries first seen at or after ``since``, oldest id first, ``size`` at a time."""
        last_id = 0
        while True:
            async with self._engine.connect() as conn:
                batch = await _batch(conn, since, last_id, size)
            if not batch:
                return
            yield batch
            last_id = batch[-1].id


async def _batch(
    conn: AsyncConnection, since: datetime, after_id: int, size: int
) -> list[StoredEntry]:
    query = (
        select(
            entries.c.id,
            entries.c.story_id,
            entries.c.title,
            entries.c.link,
            entries.c.summary,
            entries.c.first_seen,
            entries.c.alerted,
            feeds.c.url,
            feeds.c.name,
            feeds.c.tags,
        )
        .join(feeds, feeds.c.id == entries.c.feed_id)
        .where(entries.c.first_seen >= since, entries.c.id > after_id)
        .order_by(entries.c.id)
        .limit(size)
    )
    rows = (await conn.execute(query)).all()
    story_ids = sorted({row.story_id for row in rows})
    topics: dict[int, list[str]] = {}
    if story_ids:
        hit_query = (
            select(hits.c.story_id, hits.c.topic_id)
            .where(hits.c.story_id.in_(story_ids))
            .order_by(hits.c.story_id, hits.c.topic_id)
        )
        for story_id, topic_id in await conn.execute(hit_query):
            topics.setdefault(story_id, []).append(topic_id)
    return [
        StoredEntry(
            id=row.id,
            story_id=row.story_id,
            feed_url=row.url,
            feed_name=row.name,
            feed_tags=tuple(row.tags or ()),
            title=row.title,
            link=row.link,
            summary=row.summary or "",
            first_seen=row.first_seen,
            alerted=bool(row.alerted),
            old_topics=tuple(topics.get(row.story_id, ())),
        )
        for row in rows
    ]

"""The outbox: one row per (story, chat), claimed by compare-and-set, marked sent right after
Telegram answers.

A row goes pending -> sending (claimed) -> sent, or back to pending with a later
``next_attempt`` after a transient failure, or to dead with the reason. A row left in
``sending`` by a crash is released after ``stale_after``: only that one message can repeat.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.model import Delivery, Story
from bot.store.engine import Database
from bot.store.schema import (
    DEAD,
    PENDING,
    SENDING,
    SENT,
    chats,
    deliveries,
    entries,
    feeds,
    hits,
    stories,
    subscriptions,
)


class OutboxStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def release_stale(self, now: datetime, stale_after: timedelta) -> int:
        """Return rows claimed before ``now - stale_after`` (a crashed sender's) to pending."""
        async with self._db.write() as conn:
            result = await conn.execute(
                update(deliveries)
                .where(
                    deliveries.c.status == SENDING,
                    deliveries.c.claimed_at < now - stale_after,
                )
                .values(status=PENDING)
            )
        return max(result.rowcount, 0)

    async def claim(
        self, now: datetime, limit: int, *, chat_id: int | None = None
    ) -> list[Delivery]:
        """Claim up to ``limit`` due rows, oldest first (only ``chat_id``'s when given). A row
        another sender claimed first is skipped: the UPDATE only succeeds while the row is
        still pending. A row whose chat no longer follows any of the story's topics (it
        unsubscribed while the row waited) ends as dead instead of being sent."""
        query = (
            select(deliveries.c.id)
            .join(chats, chats.c.chat_id == deliveries.c.chat_id)
            .where(deliveries.c.status == PENDING, deliveries.c.next_attempt <= now, chats.c.active)
            .order_by(deliveries.c.next_attempt, deliveries.c.id)
            .limit(limit)
        )
        if chat_id is not None:
            query = query.where(deliveries.c.chat_id == chat_id)
        async with self._db.write() as conn:
            due = (await conn.execute(query)).scalars()
            claimed = []
            for delivery_id in list(due):
                result = await conn.execute(
                    update(deliveries)
                    .where(deliveries.c.id == delivery_id, deliveries.c.status == PENDING)
                    .values(status=SENDING, claimed_at=now)
                )
                if result.rowcount == 1:
                    claimed.append(delivery_id)
            return await _load(conn, claimed)

    async def mark_sent(self, delivery_id: int, message_id: int, now: datetime) -> None:
        await self._set(delivery_id, status=SENT, message_id=message_id, sent_at=now)

    async def mark_retry(
        self, delivery_id: int, error: str, next_attempt: datetime, *, count_attempt: bool = True
    ) -> None:
        async with self._db.write() as conn:
            await conn.execute(
                update(deliveries)
                .where(deliveries.c.id == delivery_id)
                .values(
                    status=PENDING,
                    attempts=deliveries.c.attempts + (1 if count_attempt else 0),
                    next_attempt=next_attempt,
                    last_error=error,
                )
            )

    async def mark_dead(self, delivery_id: int, error: str) -> None:
        async with self._db.write() as conn:
            await conn.execute(
                update(deliveries)
                .where(deliveries.c.id == delivery_id)
                .values(status=DEAD, attempts=deliveries.c.attempts + 1, last_error=error)
            )

    async def defer(self, delivery_id: int, next_attempt: datetime) -> None:
        """Hand a claimed row back unsent, due again at ``next_attempt`` (pacing, shutdown);
        not a failure: attempts and last error stay as they were."""
        await self._set(delivery_id, status=PENDING, next_attempt=next_attempt)

    async def next_due(self, *, chat_id: int | None = None) -> datetime | None:
        """When the earliest pending row becomes due, or None when nothing is pending."""
        query = (
            select(func.min(deliveries.c.next_attempt))
            .join(chats, chats.c.chat_id == deliveries.c.chat_id)
            .where(deliveries.c.status == PENDING, chats.c.active)
        )
        if chat_id is not None:
            query = query.where(deliveries.c.chat_id == chat_id)
        async with self._db.read() as conn:
            due: datetime | None = await conn.scalar(query)
            return due

    async def counts(self) -> dict[str, int]:
        """Rows per status."""
        async with self._db.read() as conn:
            rows = await conn.execute(
                select(deliveries.c.status, func.count()).group_by(deliveries.c.status)
            )
            return {status: int(n) for status, n in rows}

    async def _set(self, delivery_id: int, **values: object) -> None:
        async with self._db.write() as conn:
            await conn.execute(
                update(deliveries).where(deliveries.c.id == delivery_id).values(**values)
            )


async def _load(conn: AsyncConnection, ids: Sequence[int]) -> list[Delivery]:
    """Claimed rows with everything render needs: story, sources, and the topics (and their
    keywords) that brought it to this chat."""
    if not ids:
        return []
    rows = (
        await conn.execute(
            select(deliveries, chats.c.thread_id)
            .join(chats, chats.c.chat_id == deliveries.c.chat_id)
            .where(deliveries.c.id.in_(ids))
            .order_by(deliveries.c.id)
        )
    ).all()
    story_ids = {r.story_id for r in rows}
    story_rows = {
        s.id: s for s in await conn.execute(select(stories).where(stories.c.id.in_(story_ids)))
    }
    sources: dict[int, list[str]] = defaultdict(list)
    source_query = (
        select(entries.c.story_id, feeds.c.name)
        .join(feeds, feeds.c.id == entries.c.feed_id)
        .where(entries.c.story_id.in_(story_ids))
        .order_by(entries.c.id)
    )
    for story_id, name in await conn.execute(source_query):
        if name not in sources[story_id]:
            sources[story_id].append(name)
    story_hits: dict[int, list[tuple[str, list[str]]]] = defaultdict(list)
    for story_id, topic_id, keywords in await conn.execute(
        select(hits.c.story_id, hits.c.topic_id, hits.c.keywords)
        .where(hits.c.story_id.in_(story_ids))
        .order_by(hits.c.topic_id)
    ):
        story_hits[story_id].append((topic_id, list(keywords or [])))
    chat_topics: dict[int, set[str]] = defaultdict(set)
    for chat_id, topic_id in await conn.execute(
        select(subscriptions.c.chat_id, subscriptions.c.topic_id).where(
            subscriptions.c.chat_id.in_({r.chat_id for r in rows})
        )
    ):
        chat_topics[chat_id].add(topic_id)
    loaded = []
    for r in rows:
        delivery = _delivery(r, story_rows[r.story_id], sources, story_hits, chat_topics[r.chat_id])
        if delivery is None:
            await conn.execute(
                update(deliveries)
                .where(deliveries.c.id == r.id)
                .values(status=DEAD, last_error="not sent: the chat unsubscribed from its topics")
            )
        else:
            loaded.append(delivery)
    return loaded


def _delivery(
    row: object,
    story: object,
    sources: dict[int, list[str]],
    story_hits: dict[int, list[tuple[str, list[str]]]],
    followed: set[str],
) -> Delivery | None:
    r = row._mapping  # type: ignore[attr-defined]
    s = story._mapping  # type: ignore[attr-defined]
    relevant = [(t, kws) for t, kws in story_hits[s["id"]] if "*" in followed or t in followed]
    if not relevant:
        return None
    keywords = list(dict.fromkeys(k for _, kws in relevant for k in kws))
    return Delivery(
        id=r["id"],
        chat_id=r["chat_id"],
        attempts=r["attempts"],
        thread_id=r["thread_id"],
        created=r["created"],
        story=Story(
            id=s["id"],
            title=s["title"],
            link=s["link"],
            summary=s["summary"],
            published=s["published"],
            sources=tuple(sources[s["id"]]),
            topics=tuple(t for t, _ in relevant),
            keywords=tuple(keywords),
        ),
    )

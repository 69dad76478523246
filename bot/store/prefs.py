"""Chat preferences and the read-only queries chat commands need.

A chat's preferences live in the ``chats`` row: ``language`` (``en``, ``zh-hans``, ``zh-hant``;
older rows may hold a raw Telegram ``language_code``, which readers normalise), ``timezone``
(an IANA name; NULL means the display default), ``muted_until`` and ``digest``.

What the columns mean to the delivery side (the commands only write them):

- ``muted_until`` in the future: hold the chat's alerts (leave its rows pending). In the past:
  the mute has ended and every row still pending for the chat goes out as one digest; then
  the delivery side clears it. ``unmute`` sets it to *now*, never to NULL, so the release
  still happens. NULL: not muted, nothing held.
- ``digest``: NULL (alerts go one by one), ``hourly`` or ``daily HH:MM`` (local time in the
  chat's time zone): rows wait for the next digest time, then go out together.

Setting a preference for a chat the store has not seen creates its row (``kind`` given by the
caller); it never changes ``active``, subscriptions or the outbox.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.model import Story
from bot.store.engine import Database, insert_ignore
from bot.store.schema import chats, hits, stories, subscriptions

EVERY_TOPIC = "*"


@dataclass(frozen=True, slots=True)
class ChatPrefs:
    """A chat's preferences as stored; None where the chat has not chosen."""

    language: str | None = None
    timezone: str | None = None
    muted_until: datetime | None = None
    digest: str | None = None


class PrefStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def prefs(self, chat_id: int) -> ChatPrefs:
        """The chat's preferences; all None for a chat the store does not know."""
        query = select(chats.c.language, chats.c.timezone, chats.c.muted_until, chats.c.digest)
        async with self._db.read() as conn:
            row = (await conn.execute(query.where(chats.c.chat_id == chat_id))).first()
        return ChatPrefs(*row) if row is not None else ChatPrefs()

    async def set_language(self, chat_id: int, language: str, *, kind: str) -> None:
        await self._set(chat_id, kind, language=language)

    async def set_timezone(self, chat_id: int, timezone: str | None, *, kind: str) -> None:
        await self._set(chat_id, kind, timezone=timezone)

    async def set_digest(self, chat_id: int, digest: str | None, *, kind: str) -> None:
        await self._set(chat_id, kind, digest=digest)

    async def mute(self, chat_id: int, until: datetime, *, kind: str) -> None:
        """Hold the chat's alerts until ``until`` (a new mute replaces the old one)."""
        await self._set(chat_id, kind, muted_until=until)

    async def unmute(self, chat_id: int, now: datetime) -> bool:
        """End a running mute at ``now`` (held alerts are released); False if none ran."""
        async with self._db.write() as conn:
            result = await conn.execute(
                update(chats)
                .where(chats.c.chat_id == chat_id, chats.c.muted_until > now)
                .values(muted_until=now)
            )
        return result.rowcount > 0

    async def recent(self, chat_id: int, limit: int) -> list[Story]:
        """The chat's last ``limit`` stories (on topics it follows), newest seen first.

        ``published`` is the source's date, else when the story was first seen; ``topics``
        are the followed topics the story hit.
        """
        async with self._db.read() as conn:
            followed = list(
                await conn.scalars(
                    select(subscriptions.c.topic_id).where(subscriptions.c.chat_id == chat_id)
                )
            )
            if not followed:
                return []
            rows = (await conn.execute(_recent_query(followed, limit))).all()
            topics = await _hit_topics(conn, [r.id for r in rows], followed)
        return [
            Story(
                id=r.id,
                title=r.title,
                link=r.link,
                summary=r.summary,
                published=r.shown,
                topics=tuple(topics.get(r.id, ())),
            )
            for r in rows
        ]

    async def _set(self, chat_id: int, kind: str, **values: Any) -> None:
        async with self._db.write() as conn:
            await _ensure_chat(conn, chat_id, kind)
            await conn.execute(update(chats).where(chats.c.chat_id == chat_id).values(values))


def _recent_query(followed: Sequence[str], limit: int) -> Any:
    hit = exists().where(hits.c.story_id == stories.c.id)
    if EVERY_TOPIC not in followed:
        hit = hit.where(hits.c.topic_id.in_(followed))
    return (
        select(
            stories.c.id,
            stories.c.title,
            stories.c.link,
            stories.c.summary,
            func.coalesce(
                stories.c.published, stories.c.first_seen, type_=stories.c.first_seen.type
            ).label("shown"),
        )
        .where(hit)
        .order_by(stories.c.first_seen.desc(), stories.c.id.desc())
        .limit(limit)
    )


async def _hit_topics(
    conn: AsyncConnection, story_ids: Sequence[int], followed: Sequence[str]
) -> dict[int, list[str]]:
    if not story_ids:
        return {}
    query = select(hits.c.story_id, hits.c.topic_id).where(hits.c.story_id.in_(story_ids))
    if EVERY_TOPIC not in followed:
        query = query.where(hits.c.topic_id.in_(followed))
    topics: dict[int, list[str]] = {}
    for story_id, topic_id in await conn.execute(query.order_by(hits.c.topic_id)):
        topics.setdefault(story_id, []).append(topic_id)
    return topics


async def _ensure_chat(conn: AsyncConnection, chat_id: int, kind: str) -> None:
    await conn.execute(
        insert_ignore(conn, chats).values(
            chat_id=chat_id, kind=kind, active=True, created=datetime.now(UTC)
        )
    )

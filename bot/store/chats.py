"""Chats and their subscriptions. Configured channels are chats whose subscriptions follow
the config file; ``*`` as a topic id means every topic."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.store.engine import Database, insert_ignore
from bot.store.schema import DEAD, PENDING, SENDING, chats, deliveries, subscriptions


@dataclass(frozen=True, slots=True)
class ChannelConfig:
    chat_id: int
    topics: tuple[str, ...]
    thread_id: int | None = None


class ChatStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def upsert_chat(
        self,
        chat_id: int,
        *,
        kind: str,
        language: str | None = None,
        title: str | None = None,
    ) -> None:
        """Record a chat that talked to the bot; a chat that comes back is active again."""
        async with self._db.write() as conn:
            await _upsert(conn, chat_id, kind=kind, language=language, title=title)

    async def subscribe(self, chat_id: int, topic_ids: Sequence[str]) -> list[str]:
        """Subscribe; returns the ids that were not subscribed before."""
        added = []
        async with self._db.write() as conn:
            await _upsert(conn, chat_id, kind=_kind_of(chat_id))
            for topic_id in dict.fromkeys(topic_ids):
                result = await conn.execute(
                    insert_ignore(conn, subscriptions).values(
                        chat_id=chat_id, topic_id=topic_id, created=datetime.now(UTC)
                    )
                )
                if result.rowcount:
                    added.append(topic_id)
        return added

    async def unsubscribe(self, chat_id: int, topic_ids: Sequence[str]) -> list[str]:
        """Unsubscribe; returns the ids that were subscribed."""
        async with self._db.write() as conn:
            current = set(await _topics(conn, chat_id))
            removed = [t for t in dict.fromkeys(topic_ids) if t in current]
            if removed:
                await conn.execute(
                    delete(subscriptions).where(
                        subscriptions.c.chat_id == chat_id, subscriptions.c.topic_id.in_(removed)
                    )
                )
        return removed

    async def unsubscribe_all(self, chat_id: int) -> int:
        async with self._db.write() as conn:
            result = await conn.execute(
                delete(subscriptions).where(subscriptions.c.chat_id == chat_id)
            )
        return max(result.rowcount, 0)

    async def subscriptions(self, chat_id: int) -> list[str]:
        async with self._db.read() as conn:
            return await _topics(conn, chat_id)

    async def sync_channels(self, channels: Sequence[ChannelConfig]) -> None:
        """Make configured channels' subscriptions follow the config exactly."""
        async with self._db.write() as conn:
            configured = {c.chat_id for c in channels}
            old = set(await conn.scalars(select(chats.c.chat_id).where(chats.c.from_config)))
            for gone in old - configured:
                await conn.execute(delete(subscriptions).where(subscriptions.c.chat_id == gone))
                await conn.execute(
                    update(chats).where(chats.c.chat_id == gone).values(from_config=False)
                )
            for channel in channels:
                await _upsert(conn, channel.chat_id, kind=_kind_of(channel.chat_id))
                await conn.execute(
                    update(chats)
                    .where(chats.c.chat_id == channel.chat_id)
                    .values(from_config=True, thread_id=channel.thread_id)
                )
                await conn.execute(
                    delete(subscriptions).where(subscriptions.c.chat_id == channel.chat_id)
                )
                now = datetime.now(UTC)
                for topic in dict.fromkeys(channel.topics):
                    await conn.execute(
                        subscriptions.insert().values(
                            chat_id=channel.chat_id, topic_id=topic, created=now
                        )
                    )

    async def deactivate(self, chat_id: int, reason: str) -> int:
        """The chat blocked or removed the bot: stop sending, end its queued rows as dead."""
        async with self._db.write() as conn:
            await conn.execute(
                update(chats)
                .where(chats.c.chat_id == chat_id)
                .values(active=False, inactive_reason=reason)
            )
            result = await conn.execute(
                update(deliveries)
                .where(
                    deliveries.c.chat_id == chat_id,
                    deliveries.c.status.in_((PENDING, SENDING)),
                )
                .values(status=DEAD, last_error=f"chat inactive: {reason}")
            )
        return max(result.rowcount, 0)

    async def migrate(self, old_id: int, new_id: int) -> None:
        """A group became a supergroup: its id changes everywhere, its queue moves with it."""
        async with self._db.write() as conn:
            row = (await conn.execute(select(chats).where(chats.c.chat_id == old_id))).first()
            if row is None:
                return
            values = dict(row._mapping)
            values.update(chat_id=new_id, kind="supergroup")
            await conn.execute(delete(chats).where(chats.c.chat_id == new_id))
            await conn.execute(chats.insert().values(values))
            await conn.execute(delete(chats).where(chats.c.chat_id == old_id))
            for table in (subscriptions, deliveries):
                await conn.execute(
                    update(table).where(table.c.chat_id == old_id).values(chat_id=new_id)
                )


def _kind_of(chat_id: int) -> str:
    return "private" if chat_id > 0 else "group"


async def _topics(conn: AsyncConnection, chat_id: int) -> list[str]:
    query = (
        select(subscriptions.c.topic_id)
        .where(subscriptions.c.chat_id == chat_id)
        .order_by(subscriptions.c.topic_id)
    )
    return list(await conn.scalars(query))


async def _upsert(
    conn: AsyncConnection,
    chat_id: int,
    *,
    kind: str,
    language: str | None = None,
    title: str | None = None,
) -> None:
    await conn.execute(
        insert_ignore(conn, chats).values(
            chat_id=chat_id, kind=kind, active=True, created=datetime.now(UTC)
        )
    )
    values: dict[str, Any] = {"active": True, "inactive_reason": None}
    if language:
        values["language"] = language
    if title:
        values["title"] = title
    await conn.execute(update(chats).where(chats.c.chat_id == chat_id).values(values))

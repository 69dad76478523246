"""The store: the only SQLAlchemy user. Methods are grouped by domain:

- ``store.feeds``: feed state, seen entries, health;
- ``store.stories``: one-transaction feed cycles: entries, stories, hits, outbox rows;
- ``store.chats``: chats and subscriptions (``SubscriptionStore`` for chat commands);
- ``store.outbox``: claiming, marking and counting deliveries;
- ``store.digests``: held deliveries released together (after a mute, at digest times);
- ``store.prefs``: chat preferences (language, time zone, mute, digest) and /recent.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.store.chats import ChannelConfig, ChatStore
from bot.store.digests import DigestStore
from bot.store.engine import Database, create_engine, migrate
from bot.store.feeds import FeedStore
from bot.store.outbox import OutboxStore
from bot.store.prefs import PrefStore
from bot.store.stories import StoryStore

__all__ = ["ChannelConfig", "Store"]


class Store:
    def __init__(self, engine: AsyncEngine, *, story_window: timedelta) -> None:
        self.engine = engine
        self._db = db = Database(engine)
        self.feeds = FeedStore(db)
        self.stories = StoryStore(db, story_window=story_window)
        self.chats = ChatStore(db)
        self.outbox = OutboxStore(db)
        self.digests = DigestStore(db)
        self.prefs = PrefStore(db)

    @classmethod
    async def open(cls, url: str, *, story_window: timedelta = timedelta(hours=72)) -> Store:
        """Open the database at ``url`` and create or upgrade its schema."""
        engine = create_engine(url)
        try:
            await migrate(engine)
        except BaseException:
            await engine.dispose()
            raise
        return cls(engine, story_window=story_window)

    async def close(self) -> None:
        await self._db.close()
        await self.engine.dispose()

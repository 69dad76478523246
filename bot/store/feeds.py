"""Feeds: their state between fetches (validators, schedule, errors) and their health."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, cast, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.model import Feed, FeedHealth, FeedState
from bot.store.engine import Database
from bot.store.schema import (
    entries,
    feeds,
)

_CHUNK = 500


class FeedStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def sync(self, configured: Sequence[Feed]) -> None:
        """Make the feeds table follow ``feeds.yaml``: add new feeds, retire removed ones."""
        async with self._db.write() as conn:
            known = {row.url: row.id for row in await conn.execute(select(feeds.c.url, feeds.c.id))}
            for feed in configured:
                values = {"name": feed.name, "tags": list(feed.tags), "active": True}
                if feed.url in known:
                    await conn.execute(update(feeds).where(feeds.c.url == feed.url).values(values))
                else:
                    await conn.execute(feeds.insert().values(url=feed.url, **values))
            gone = set(known) - {f.url for f in configured}
            if gone:
                await conn.execute(update(feeds).where(feeds.c.url.in_(gone)).values(active=False))

    async def state(self, url: str) -> FeedState:
        async with self._db.read() as conn:
            row = (await conn.execute(select(feeds).where(feeds.c.url == url))).first()
        if row is None:
            return FeedState()
        return FeedState(
            etag=row.etag,
            last_modified=row.last_modified,
            content_hash=row.content_hash,
            first_fetch_done=row.first_fetch_done,
            consecutive_errors=row.consecutive_errors,
        )

    async def next_fetches(self) -> dict[str, datetime | None]:
        """When each active feed is due, as the last cycle decided (None: never fetched)."""
        async with self._db.read() as conn:
            rows = await conn.execute(select(feeds.c.url, feeds.c.next_fetch).where(feeds.c.active))
            return {url: when for url, when in rows}

    async def seen_keys(self, url: str, keys: Sequence[str]) -> set[str]:
        """The subset of ``keys`` already recorded for this feed (one query per 500 keys)."""
        seen: set[str] = set()
        async with self._db.read() as conn:
            feed_id = await lookup_feed_id(conn, url)
            for i in range(0, len(keys), _CHUNK):
                chunk = keys[i : i + _CHUNK]
                query = select(entries.c.entry_key).where(
                    entries.c.feed_id == feed_id, entries.c.entry_key.in_(chunk)
                )
                seen.update(await conn.scalars(query))
        return seen

    async def record_error(
        self, url: str, error: str, *, now: datetime, next_fetch: datetime
    ) -> None:
        async with self._db.write() as conn:
            await conn.execute(
                update(feeds)
                .where(feeds.c.url == url)
                .values(
                    last_fetch=now,
                    next_fetch=next_fetch,
                    status="error",
                    consecutive_errors=feeds.c.consecutive_errors + 1,
                    last_error=error,
                )
            )

    async def record_unchanged(
        self,
        url: str,
        *,
        status: str,
        now: datetime,
        next_fetch: datetime,
        etag: str | None = None,
        last_modified: str | None = None,
    ) -> None:
        """A 304, or a body identical to the last one: nothing to parse, the feed is healthy."""
        values: dict[str, Any] = ok_values(status, now, next_fetch)
        if etag is not None:
            values["etag"] = etag
        if last_modified is not None:
            values["last_modified"] = last_modified
        async with self._db.write() as conn:
            await conn.execute(update(feeds).where(feeds.c.url == url).values(values))

    async def health(self) -> list[FeedHealth]:
        entry_counts = (
            select(
                entries.c.feed_id,
                func.count().label("n"),
                func.sum(cast(entries.c.matched, Integer)).label("hits"),
            )
            .group_by(entries.c.feed_id)
            .subquery()
        )
        query = (
            select(feeds, entry_counts.c.n, entry_counts.c.hits)
            .outerjoin(entry_counts, entry_counts.c.feed_id == feeds.c.id)
            .where(feeds.c.active)
            .order_by(feeds.c.name)
        )
        async with self._db.read() as conn:
            rows = (await conn.execute(query)).all()
        return [
            FeedHealth(
                url=row.url,
                name=row.name,
                last_fetch=row.last_fetch,
                last_success=row.last_success,
                status=row.status,
                consecutive_errors=row.consecutive_errors,
                last_error=row.last_error,
                entries=int(row.n or 0),
                hits=int(row.hits or 0),
                disabled=row.disabled_reason,
            )
            for row in rows
        ]


def ok_values(status: str, now: datetime, next_fetch: datetime) -> dict[str, Any]:
    return {
        "status": status,
        "last_fetch": now,
        "last_success": now,
        "next_fetch": next_fetch,
        "consecutive_errors": 0,
        "last_error": None,
    }


async def lookup_feed_id(conn: AsyncConnection, url: str) -> int:
    feed_id = await conn.scalar(select(feeds.c.id).where(feeds.c.url == url))
    if feed_id is None:
        raise KeyError(f"feed not in the store: {url}")
    return int(feed_id)

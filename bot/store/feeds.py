"""Feeds: their state between fetches (validators, schedule, errors) and their health.

Disabled feeds (``410 Gone``) keep ``disabled_reason`` until an operator acts: ``sync`` never
clears it, because a feed is keyed by its URL and the URL that answered 410 is gone for good.
Changing the feed's url in ``feeds.yaml`` makes it a new feed with a fresh state; ``enable``
re-enables one in place.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, Row, bindparam, cast, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.decide import NEVER
from bot.model import Feed, FeedHealth, FeedState
from bot.store.engine import Database
from bot.store.schema import (
    entries,
    feeds,
)

_CHUNK = 500


@dataclass(frozen=True, slots=True)
class StoredFeed:
    """What a feed cycle needs from the store, read in one query.

    ``redirect_url``: where a permanent redirect led (fetch there); ``disabled``: why the feed
    is no longer fetched; ``ttl`` (seconds) and ``warning``: from the last parsed document.
    """

    state: FeedState
    feed_id: int | None = None
    redirect_url: str | None = None
    disabled: str | None = None
    ttl: float | None = None
    warning: str | None = None


@dataclass(frozen=True, slots=True)
class StoredHealth(FeedHealth):
    """``FeedHealth`` plus where the feed moved and its last parse warning."""

    redirect_url: str | None = None
    warning: str | None = None


class FeedStore:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._batched = _GroupWriter(db)

    async def sync(self, configured: Sequence[Feed]) -> None:
        """Make the feeds table follow ``feeds.yaml``: add new feeds, retire removed ones.

        A disabled feed stays disabled (see the module docstring).
        """
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
        return (await self.load(url)).state

    async def load(self, url: str) -> StoredFeed:
        async with self._db.read() as conn:
            row = (await conn.execute(select(feeds).where(feeds.c.url == url))).first()
        return StoredFeed(FeedState()) if row is None else _stored(row)

    async def load_all(self) -> dict[str, StoredFeed]:
        """Every active feed's ``load``, by url, in one query (a poll of every feed)."""
        async with self._db.read() as conn:
            rows = await conn.execute(select(feeds).where(feeds.c.active))
            return {row.url: _stored(row) for row in rows}

    async def next_fetches(self) -> dict[str, datetime | None]:
        """When each active feed is due, as the last cycle decided (None: never fetched;
        ``decide.NEVER``: disabled)."""
        query = select(feeds.c.url, feeds.c.next_fetch, feeds.c.disabled_reason)
        async with self._db.read() as conn:
            rows = await conn.execute(query.where(feeds.c.active))
            return {url: NEVER if reason else when for url, when, reason in rows}

    async def seen_keys(
        self, url: str, keys: Sequence[str], *, feed_id: int | None = None
    ) -> set[str]:
        """The subset of ``keys`` already recorded for this feed (one query per 500 keys)."""
        seen: set[str] = set()
        async with self._db.read() as conn:
            feed_id = feed_id if feed_id is not None else await lookup_feed_id(conn, url)
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
        redirect_url: str | None = None,
    ) -> None:
        """A 304, or a body identical to the last one: nothing to parse, the feed is healthy."""
        values: dict[str, Any] = ok_values(status, now, next_fetch)
        optional = {"etag": etag, "last_modified": last_modified, "redirect_url": redirect_url}
        values.update({key: value for key, value in optional.items() if value is not None})
        await self._batched.update(url, values)

    async def disable(self, url: str, reason: str, *, now: datetime) -> None:
        """Stop fetching a feed (410 Gone) and say why; ``newsbot feeds`` shows the reason."""
        values = {
            "disabled_reason": reason,
            "disabled_at": now,
            "status": "disabled",
            "last_fetch": now,
            "last_error": reason,
            "next_fetch": None,
        }
        async with self._db.write() as conn:
            await conn.execute(update(feeds).where(feeds.c.url == url).values(values))

    async def enable(self, url: str) -> bool:
        """Fetch a disabled feed again, from scratch; False when no such disabled feed."""
        values = {
            "disabled_reason": None,
            "disabled_at": None,
            "status": "new",
            "consecutive_errors": 0,
            "next_fetch": None,
            "redirect_url": None,
        }
        query = update(feeds).where(feeds.c.url == url, feeds.c.disabled_reason.is_not(None))
        async with self._db.write() as conn:
            return bool((await conn.execute(query.values(values))).rowcount)

    async def record_notes(self, url: str, *, ttl: float | None, warning: str | None) -> None:
        """Remember the last document's ``<ttl>`` and parse warning (called when they change)."""
        values = {"ttl": int(ttl) if ttl else None, "last_warning": warning}
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
            StoredHealth(
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
                redirect_url=row.redirect_url,
                warning=row.last_warning,
            )
            for row in rows
        ]


class _GroupWriter:
    """Feed-row updates from concurrent cycles, committed together (group commit).

    An unchanged poll (304) changes a few columns of one row; a write transaction each cost
    more than the fetch itself (SQLite's one writer, per-statement overhead), so a poll of
    200 unchanged feeds was bound by commits. Every caller still returns only once its own
    row is committed: updates that arrive while a batch is being written form the next one,
    and rows with the same columns are one executemany.
    """

    def __init__(self, db: Database) -> None:
        self._db = db
        self._pending: list[tuple[str, dict[str, Any], asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def update(self, url: str, values: dict[str, Any]) -> None:
        done = asyncio.get_running_loop().create_future()
        self._pending.append((url, values, done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.ensure_future(self._drain())
        await done

    async def _drain(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                await self._write(batch)
            except Exception as e:  # every caller of the batch learns it failed
                outcome: BaseException | None = e
            else:
                outcome = None
            for _, _, done in batch:
                if not done.done():
                    done.set_result(None) if outcome is None else done.set_exception(outcome)

    async def _write(self, batch: list[tuple[str, dict[str, Any], asyncio.Future[None]]]) -> None:
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for url, values, _ in batch:
            groups.setdefault(tuple(sorted(values)), []).append({"_url": url, **values})
        async with self._db.write() as conn:
            for columns, rows in groups.items():
                statement = (
                    update(feeds)
                    .where(feeds.c.url == bindparam("_url"))
                    .values({column: bindparam(column) for column in columns})
                )
                await conn.execute(statement, rows)


def _stored(row: Row[Any]) -> StoredFeed:
    state = FeedState(
        etag=row.etag,
        last_modified=row.last_modified,
        content_hash=row.content_hash,
        first_fetch_done=row.first_fetch_done,
        consecutive_errors=row.consecutive_errors,
    )
    return StoredFeed(
        state,
        feed_id=row.id,
        redirect_url=row.redirect_url,
        disabled=row.disabled_reason,
        ttl=row.ttl,
        warning=row.last_warning,
    )


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

"""Entries, stories and hits: what one feed cycle writes.

``save_cycle`` writes a whole cycle in one transaction: the feed's new validators, every new
entry, the story each joins or starts, the story's hits, and the outbox rows for the chats that
follow the hit topics. Either all of it is stored or none of it, so an alert is queued exactly
when its entry is recorded as seen.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists, func, literal, or_, select, union_all, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.selectable import Exists

from bot import dedup
from bot.model import Candidate, Hit
from bot.store.engine import Database, insert_ignore
from bot.store.feeds import lookup_feed_id, ok_values
from bot.store.schema import (
    EDIT_PENDING,
    EDIT_SENDING,
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

_CHUNK = 500
_SIGNATURE_CACHE = 100_000
# Telegram lets a bot edit its messages for 48 hours; older alerts are left as they are.
EDITABLE_FOR = timedelta(hours=48)
_STORY_LOCK = 0x6E657773  # "news": the advisory lock id serialising story creation


class StoryStore:
    def __init__(self, db: Database, *, story_window: timedelta) -> None:
        self._db = db
        self._window = story_window
        self._signatures: dict[int, dedup.TitleSignature] = {}
        self._index: dict[str, set[int]] = {}

    async def save_cycle(
        self,
        url: str,
        candidates: Sequence[Candidate],
        *,
        now: datetime,
        next_fetch: datetime,
        etag: str | None,
        last_modified: str | None,
        content_hash: str | None,
        redirect_url: str | None = None,
    ) -> tuple[int, int]:
        """Store a fetched feed's new entries; returns (entries with hits, outbox rows queued)."""
        values: dict[str, Any] = ok_values("ok", now, next_fetch)
        values.update(
            etag=etag, last_modified=last_modified, content_hash=content_hash, first_fetch_done=True
        )
        if redirect_url:
            values["redirect_url"] = redirect_url
        async with self._db.write() as conn:
            await _serialize_story_writers(conn)
            feed_id = await lookup_feed_id(conn, url)
            await conn.execute(update(feeds).where(feeds.c.id == feed_id).values(values))
            if not candidates:
                return 0, 0
            story_ids = await self._stories_for(conn, feed_id, candidates, now)
            await conn.execute(
                insert_ignore(conn, entries),
                [
                    _entry_row(feed_id, sid, c, now)
                    for sid, c in zip(story_ids, candidates, strict=True)
                ],
            )
            hit_rows = [
                {
                    "story_id": sid,
                    "topic_id": h.topic_id,
                    "keywords": list(h.keywords),
                    "created": now,
                }
                for sid, c in zip(story_ids, candidates, strict=True)
                for h in c.hits
            ]
            if hit_rows:
                await conn.execute(insert_ignore(conn, hits), hit_rows)
            queued = 0
            for sid, cand in zip(story_ids, candidates, strict=True):
                if cand.alert and cand.hits:
                    queued += await _fan_out(conn, sid, cand.hits, now)
        return sum(1 for c in candidates if c.hits), queued

    async def _stories_for(
        self, conn: AsyncConnection, feed_id: int, candidates: Sequence[Candidate], now: datetime
    ) -> list[int]:
        """The story each entry joins, creating stories for the rest.

        An entry joins the oldest story with its canonical URL; else the oldest story with its
        title key, else the most similar near duplicate (``dedup.near_duplicate``), among the
        stories that started within the window and that this feed has not carried yet. Title
        matching finds one story told by several outlets; within one feed a repeated title is
        a new item ("Hong Kong stocks close lower" on two days), never the same story.
        A story this feed joins for the first time gets its sent alerts edited to list it.
        """
        by_url, by_key = await self._existing_stories(conn, feed_id, candidates, now)
        similar = await self._similar_stories(conn, feed_id, candidates, by_url, by_key, now)
        ids = []
        for cand, near in zip(candidates, similar, strict=True):
            story_id = by_url.get(cand.canonical_url) or by_key.get(cand.title_key) or near
            if story_id is None:
                story_id = await _new_story(conn, cand, now)
            if cand.canonical_url:
                by_url.setdefault(cand.canonical_url, story_id)
            ids.append(story_id)
        await _flag_edits(conn, feed_id, ids, now)
        return ids

    async def _similar_stories(
        self,
        conn: AsyncConnection,
        feed_id: int,
        candidates: Sequence[Candidate],
        by_url: dict[str, int],
        by_key: dict[str, int],
        now: datetime,
    ) -> list[int | None]:
        """For each candidate not matched by URL or title key, the id of the near-duplicate
        story it joins (most shared shingles, then oldest), else None.

        Stories are found through an in-memory index from shingle to story ids, kept across
        cycles (titles never change), so a title is folded once and a new title is compared
        only with the stories that share a shingle with it, not with every story."""
        wanted = [not (by_url.get(c.canonical_url) or by_key.get(c.title_key)) for c in candidates]
        if not any(wanted):
            return [None] * len(candidates)
        query = select(stories.c.id, stories.c.title).where(
            stories.c.fingerprint.is_not(None),
            stories.c.first_seen >= now - self._window,
            ~_carried_by(feed_id),
        )
        allowed = set()
        for story_id, title in await conn.execute(query):
            self._remember(int(story_id), title)
            allowed.add(int(story_id))
        return [
            self._closest(dedup.title_signature(c.entry.title), allowed) if want else None
            for c, want in zip(candidates, wanted, strict=True)
        ]

    def _remember(self, story_id: int, title: str) -> None:
        if story_id in self._signatures:
            return
        if len(self._signatures) > _SIGNATURE_CACHE:
            self._signatures.clear()
            self._index.clear()
        signature = self._signatures[story_id] = dedup.title_signature(title)
        for shingle in signature.shingles:
            self._index.setdefault(shingle, set()).add(story_id)

    def _closest(self, signature: dedup.TitleSignature, allowed: set[int]) -> int | None:
        shared: Counter[int] = Counter()
        for shingle in signature.shingles:
            shared.update(self._index.get(shingle, set()) & allowed)
        ranked = sorted(
            (-n, story_id) for story_id, n in shared.items() if n >= dedup.MIN_SHARED_SHINGLES
        )
        for _, story_id in ranked:
            if dedup.similar_signatures(signature, self._signatures[story_id]):
                return story_id
        return None

    async def _existing_stories(
        self, conn: AsyncConnection, feed_id: int, candidates: Sequence[Candidate], now: datetime
    ) -> tuple[dict[str, int], dict[str, int]]:
        urls = sorted({c.canonical_url for c in candidates if c.canonical_url})
        keys = sorted({c.title_key for c in candidates if c.title_key})
        by_url: dict[str, int] = {}
        by_key: dict[str, int] = {}
        for i in range(0, len(urls), _CHUNK):
            # A story's URL, or the URL of any entry that joined it (another outlet's link).
            chunk = urls[i : i + _CHUNK]
            by_entry = union_all(
                select(stories.c.id, stories.c.canonical_url).where(
                    stories.c.canonical_url.in_(chunk)
                ),
                select(entries.c.story_id, entries.c.canonical_url).where(
                    entries.c.canonical_url.in_(chunk)
                ),
            )
            for story_id, canonical in sorted(await conn.execute(by_entry)):
                by_url.setdefault(canonical, story_id)
        for i in range(0, len(keys), _CHUNK):
            query = select(stories.c.id, stories.c.title_key).where(
                stories.c.title_key.in_(keys[i : i + _CHUNK]),
                stories.c.first_seen >= now - self._window,
                ~_carried_by(feed_id),
            )
            for story_id, key in await conn.execute(query.order_by(stories.c.id)):
                by_key.setdefault(key, story_id)
        return by_url, by_key


def _carried_by(feed_id: int) -> Exists:
    return exists().where(entries.c.story_id == stories.c.id, entries.c.feed_id == feed_id)


async def _flag_edits(
    conn: AsyncConnection, feed_id: int, story_ids: Sequence[int], now: datetime
) -> None:
    """This feed is a new source of stories already sent: queue an edit of those alerts
    (only while Telegram still allows editing them; see ``EDITABLE_FOR``)."""
    joined = set(story_ids)
    if not joined:
        return
    carried = set(
        await conn.scalars(
            select(entries.c.story_id).where(
                entries.c.feed_id == feed_id, entries.c.story_id.in_(joined)
            )
        )
    )
    new_source = sorted(joined - carried)
    if not new_source:
        return
    await conn.execute(
        update(deliveries)
        .where(
            deliveries.c.story_id.in_(new_source),
            deliveries.c.status.in_((SENT, SENDING)),
            or_(deliveries.c.sent_at.is_(None), deliveries.c.sent_at >= now - EDITABLE_FOR),
            or_(deliveries.c.edit.is_(None), deliveries.c.edit != EDIT_SENDING),
        )
        .values(edit=EDIT_PENDING, next_attempt=now)
    )


async def _new_story(conn: AsyncConnection, cand: Candidate, now: datetime) -> int:
    result = await conn.execute(
        stories.insert().values(
            canonical_url=cand.canonical_url,
            title_key=cand.title_key,
            fingerprint=dedup.fingerprint(cand.entry.title),
            title=cand.entry.title,
            link=cand.entry.link,
            summary=_summary(cand),
            published=cand.entry.published,
            first_seen=now,
        )
    )
    key = result.inserted_primary_key
    if key is None:  # pragma: no cover - every supported dialect returns the new id
        raise RuntimeError("the database did not return the new story's id")
    return int(key[0])


def _entry_row(feed_id: int, story_id: int, cand: Candidate, now: datetime) -> dict[str, Any]:
    return {
        "feed_id": feed_id,
        "entry_key": cand.key,
        "story_id": story_id,
        "canonical_url": cand.canonical_url,
        "title": cand.entry.title,
        "link": cand.entry.link,
        "summary": _summary(cand),
        "published": cand.entry.published,
        "first_seen": now,
        "alerted": cand.alert and bool(cand.hits),
        "matched": bool(cand.hits),
    }


def _summary(cand: Candidate) -> str:
    """The entry's summary, else the start of its content (some feeds carry only content)."""
    return cand.entry.summary or cand.entry.content[:2000]


async def _serialize_story_writers(conn: AsyncConnection) -> None:
    """Take the write lock before the first read, so two feeds carrying one story at the same
    moment cannot both miss the other's row and start two stories.

    SQLite: the first statement of the transaction is a write, which takes SQLite's single
    write lock; the reads after it see every committed story. PostgreSQL: a transaction-level
    advisory lock does the same across instances sharing the database.
    """
    if conn.dialect.name == "postgresql":
        await conn.execute(select(func.pg_advisory_xact_lock(_STORY_LOCK)))
    else:
        await conn.execute(update(feeds).where(feeds.c.id == -1).values(active=feeds.c.active))


async def _fan_out(
    conn: AsyncConnection, story_id: int, story_hits: Sequence[Hit], now: datetime
) -> int:
    """Queue the story for every active chat that follows one of the hit topics, once."""
    topic_ids = [h.topic_id for h in story_hits] + ["*"]
    followers = (
        select(
            literal(story_id).label("story_id"),
            subscriptions.c.chat_id,
            literal(PENDING).label("status"),
            literal(0).label("attempts"),
            literal(now, type_=deliveries.c.next_attempt.type).label("next_attempt"),
            literal(now, type_=deliveries.c.created.type).label("created"),
        )
        .join(chats, chats.c.chat_id == subscriptions.c.chat_id)
        .where(chats.c.active, subscriptions.c.topic_id.in_(topic_ids))
        .group_by(subscriptions.c.chat_id)
    )
    columns = ["story_id", "chat_id", "status", "attempts", "next_attempt", "created"]
    result = await conn.execute(insert_ignore(conn, deliveries).from_select(columns, followers))
    return max(result.rowcount, 0)

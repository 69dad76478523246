"""Entries, stories and hits: what one feed cycle writes.

``save_cycle`` writes a whole cycle in one transaction: the feed's new validators, every new
entry, the story each joins or starts, the story's hits, and the outbox rows for the chats that
follow the hit topics. Either all of it is stored or none of it, so an alert is queued exactly
when its entry is recorded as seen.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import Connection, exists, func, literal, or_, select, union_all, update
from sqlalchemy.sql.selectable import Exists

from bot import dedup
from bot.model import Candidate, Hit
from bot.store.engine import Database, insert_ignore
from bot.store.feeds import ok_values
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
# What identifies a new story's row among those inserted together (all but first_seen).
_STORY_COLUMNS = (
    "canonical_url",
    "title_key",
    "title",
    "link",
    "summary",
    "published",
)
# How often the title index forgets stories older than the window, and the margin it keeps.
_PRUNE_EVERY = timedelta(minutes=10)
_LOAD_SLACK = timedelta(hours=1)
# Telegram lets a bot edit its messages for 48 hours; older alerts are left as they are.
EDITABLE_FOR = timedelta(hours=48)
_STORY_LOCK = 0x6E657773  # "news": the advisory lock id serialising story creation


class StoryStore:
    """``save_cycle`` runs its transaction through ``Database.run``: as plain code, in the
    database thread on SQLite. The title index is touched only from there."""

    def __init__(self, db: Database, *, story_window: timedelta) -> None:
        self._db = db
        self._window = story_window
        # Titles of the stories in the window, loaded incrementally (see ``_load_titles``).
        self._titles = dedup.TitleIndex()
        self._loaded_to = 0  # the highest story id loaded into ``_titles``
        # Signatures of the titles of stories this process created, by title, until
        # ``_load_titles`` adds those stories to the index (it would compute them again).
        self._created: dict[str, dedup.TitleSignature] = {}
        self._pruned_at: datetime | None = None

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
        return await self._db.run(partial(self._save, url, values, candidates, now))

    def _save(
        self,
        url: str,
        values: dict[str, Any],
        candidates: Sequence[Candidate],
        now: datetime,
        conn: Connection,
    ) -> tuple[int, int]:
        _serialize_story_writers(conn)
        feed_id = conn.scalar(
            update(feeds).where(feeds.c.url == url).values(values).returning(feeds.c.id)
        )
        if feed_id is None:
            raise KeyError(f"feed not in the store: {url}")
        if not candidates:
            return 0, 0
        story_ids = self._stories_for(conn, feed_id, candidates, now)
        conn.execute(
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
            conn.execute(insert_ignore(conn, hits), hit_rows)
        queued = 0
        for sid, cand in zip(story_ids, candidates, strict=True):
            if cand.alert and cand.hits:
                queued += _fan_out(conn, sid, cand.hits, now)
        return sum(1 for c in candidates if c.hits), queued

    def _stories_for(
        self, conn: Connection, feed_id: int, candidates: Sequence[Candidate], now: datetime
    ) -> list[int]:
        """The story each entry joins, creating stories for the rest.

        An entry joins the oldest story with its canonical URL; else the oldest story with its
        title key, else the most similar near duplicate (``dedup.near_duplicate``), among the
        stories that started within the window and that this feed has not carried yet. Title
        matching finds one story told by several outlets; within one feed a repeated title is
        a new item ("Hong Kong stocks close lower" on two days), never the same story.
        A story this feed joins for the first time gets its sent alerts edited to list it.

        New stories are inserted together (one executemany with RETURNING); until then the
        n-th new story stands as ``-n``, so a later entry with the same URL joins it.
        """
        by_url, by_key = self._existing_stories(conn, feed_id, candidates, now)
        signatures = [
            None
            if by_url.get(c.canonical_url) or by_key.get(c.title_key)
            else dedup.title_signature(c.entry.title)
            for c in candidates
        ]
        similar = self._similar_stories(conn, feed_id, signatures, now)
        ids = []
        new_rows: list[dict[str, Any]] = []
        for cand, signature, near in zip(candidates, signatures, similar, strict=True):
            story_id = by_url.get(cand.canonical_url) or by_key.get(cand.title_key) or near
            if story_id is None:
                new_rows.append(_story_row(cand, now))
                story_id = -len(new_rows)
                if signature is not None:
                    self._created[cand.entry.title] = signature
            if cand.canonical_url:
                by_url.setdefault(cand.canonical_url, story_id)
            ids.append(story_id)
        _flag_edits(conn, feed_id, [i for i in ids if i > 0], now)
        if new_rows:
            new_ids = _insert_stories(conn, new_rows)
            ids = [new_ids[-i - 1] if i < 0 else i for i in ids]
        return ids

    def _similar_stories(
        self,
        conn: Connection,
        feed_id: int,
        signatures: Sequence[dedup.TitleSignature | None],
        now: datetime,
    ) -> list[int | None]:
        """For each title signature given (candidates not matched by URL or title key), the
        id of the near-duplicate story it joins (most shared shingles, then oldest), else None.

        The titles of the stories in the window are kept in memory (``dedup.TitleIndex``) and
        only the stories created since the last cycle are read (titles never change); the
        database then only confirms, for the few near duplicates found, that they are still
        in the window and not carried by this feed yet."""
        if all(s is None for s in signatures):
            return [None] * len(signatures)
        self._load_titles(conn, now)
        found = [self._titles.similar(s) if s is not None else [] for s in signatures]
        ids = sorted({story_id for ranked in found for _, story_id in ranked})
        if not ids:
            return [None] * len(signatures)
        allowed: set[int] = set()
        for i in range(0, len(ids), _CHUNK):
            query = select(stories.c.id).where(
                stories.c.id.in_(ids[i : i + _CHUNK]),
                stories.c.first_seen >= now - self._window,
                ~_carried_by(feed_id),
            )
            allowed.update(conn.scalars(query))
        return [next((sid for _, sid in ranked if sid in allowed), None) for ranked in found]

    def _load_titles(self, conn: Connection, now: datetime) -> None:
        """Add the stories created since the last load to the title index.

        Story ids grow in commit order: stories are only created inside ``save_cycle``,
        whose transactions take turns (``_serialize_story_writers``), and this runs inside
        one of them, so every story with an id above the highest loaded is committed and
        visible, whichever process wrote it. Stories older than the window are forgotten
        (checked every ``_PRUNE_EVERY``); ``_LOAD_SLACK`` keeps a story near the window's
        edge even if the clock steps back a little.
        """
        cutoff = now - self._window - _LOAD_SLACK
        if self._pruned_at is None or not now - _PRUNE_EVERY < self._pruned_at <= now:
            self._titles.prune(cutoff.timestamp())
            self._pruned_at = now
        query = (
            select(stories.c.id, stories.c.title, stories.c.first_seen)
            .where(
                stories.c.id > self._loaded_to,
                stories.c.first_seen >= cutoff,
            )
            .order_by(stories.c.id)
        )
        created, self._created = self._created, {}  # the rest: of a rolled-back cycle
        for story_id, title, first_seen in conn.execute(query):
            self._titles.add(int(story_id), title, first_seen.timestamp(), created.get(title))
            self._loaded_to = max(self._loaded_to, int(story_id))

    def _existing_stories(
        self, conn: Connection, feed_id: int, candidates: Sequence[Candidate], now: datetime
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
            for story_id, canonical in sorted(conn.execute(by_entry)):
                by_url.setdefault(canonical, story_id)
        for i in range(0, len(keys), _CHUNK):
            query = select(stories.c.id, stories.c.title_key).where(
                stories.c.title_key.in_(keys[i : i + _CHUNK]),
                stories.c.first_seen >= now - self._window,
                ~_carried_by(feed_id),
            )
            for story_id, key in conn.execute(query.order_by(stories.c.id)):
                by_key.setdefault(key, story_id)
        return by_url, by_key


def _carried_by(feed_id: int) -> Exists:
    return exists().where(entries.c.story_id == stories.c.id, entries.c.feed_id == feed_id)


def _flag_edits(conn: Connection, feed_id: int, story_ids: Sequence[int], now: datetime) -> None:
    """This feed is a new source of stories already sent: queue an edit of those alerts
    (only while Telegram still allows editing them; see ``EDITABLE_FOR``)."""
    joined = set(story_ids)
    if not joined:
        return
    carried = set(
        conn.scalars(
            select(entries.c.story_id).where(
                entries.c.feed_id == feed_id, entries.c.story_id.in_(joined)
            )
        )
    )
    new_source = sorted(joined - carried)
    if not new_source:
        return
    conn.execute(
        update(deliveries)
        .where(
            deliveries.c.story_id.in_(new_source),
            deliveries.c.status.in_((SENT, SENDING)),
            or_(deliveries.c.sent_at.is_(None), deliveries.c.sent_at >= now - EDITABLE_FOR),
            or_(deliveries.c.edit.is_(None), deliveries.c.edit != EDIT_SENDING),
        )
        .values(edit=EDIT_PENDING, next_attempt=now)
    )


def _insert_stories(conn: Connection, rows: list[dict[str, Any]]) -> list[int]:
    """Insert stories in one statement; their new ids, in the order of ``rows``.

    RETURNING does not promise the rows' order (SQLite says so; SQLAlchemy would fall back
    to one INSERT per row to keep it), so each returned id is matched to its row by the
    values inserted. Rows with equal values are interchangeable; they get ids in order.
    """
    columns = [stories.c[name] for name in _STORY_COLUMNS]
    result = conn.execute(stories.insert().returning(stories.c.id, *columns), rows)
    waiting: dict[tuple[Any, ...], list[int]] = {}
    for position, row in enumerate(rows):
        waiting.setdefault(tuple(row[name] for name in _STORY_COLUMNS), []).append(position)
    ids = [0] * len(rows)
    for story_id, *values in sorted(result.all()):
        positions = waiting.get(tuple(values))
        if not positions:  # pragma: no cover - the database returns what it was given
            raise RuntimeError("a new story's row came back changed")
        ids[positions.pop(0)] = int(story_id)
    if not all(ids):  # pragma: no cover
        raise RuntimeError("the database did not return the new stories' ids")
    return ids


def _story_row(cand: Candidate, now: datetime) -> dict[str, Any]:
    return {
        "canonical_url": cand.canonical_url,
        "title_key": cand.title_key,
        "title": cand.entry.title,
        "link": cand.entry.link,
        "summary": _summary(cand),
        "published": cand.entry.published,
        "first_seen": now,
    }


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


def _serialize_story_writers(conn: Connection) -> None:
    """Take the write lock before the first read, so two feeds carrying one story at the same
    moment cannot both miss the other's row and start two stories.

    SQLite: nothing to do here. On a file, ``Database.run`` begins the transaction IMMEDIATE,
    which takes SQLite's single write lock before any read; in memory, the transaction's
    first statement is ``save_cycle``'s feed UPDATE, which does the same. The reads after it
    see every committed story. PostgreSQL: a transaction-level advisory lock does the same
    across instances sharing the database.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(select(func.pg_advisory_xact_lock(_STORY_LOCK)))


def _fan_out(conn: Connection, story_id: int, story_hits: Sequence[Hit], now: datetime) -> int:
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
    result = conn.execute(insert_ignore(conn, deliveries).from_select(columns, followers))
    return max(result.rowcount, 0)

"""The outbox: one row per (story, chat), claimed by compare-and-set, marked sent right after
Telegram answers.

A row goes pending -> sending (claimed) -> sent, or back to pending with a later
``next_attempt`` after a transient failure, or to dead with the reason. A row left in
``sending`` by a crash is released after ``stale_after``, or at once when its claimer
(``host:pid``) is known to be gone: only the messages in flight can repeat. On PostgreSQL the
claim also locks with ``FOR UPDATE SKIP LOCKED``, so instances sharing the database never
wait on each other's rows.

A sent row whose story gained a source later carries ``edit = pending``: ``claim_edits``
hands it out (as ``EditJob``) to be edited in place, paced like a send.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from bot.model import Delivery, Story
from bot.outbox_view import ChatQueue, DeadRow, OutboxReport
from bot.store.engine import Database
from bot.store.schema import (
    DEAD,
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

# Telegram lets a bot edit its messages for 48 hours; an older alert keeps its text.
EDITABLE_FOR = timedelta(hours=48)


@dataclass(frozen=True, slots=True)
class EditJob:
    """A sent alert to edit: ``story`` as that chat saw it, with every source it has now;
    ``shown`` are the sources the message lists already."""

    id: int
    chat_id: int
    message_id: int
    story: Story
    shown: tuple[str, ...]
    sent_at: datetime | None
    attempts: int = 0
    language: str | None = None
    timezone: str | None = None

    @property
    def added(self) -> tuple[str, ...]:
        return tuple(s for s in self.story.sources if s not in self.shown)


class OutboxStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def release_stale(
        self,
        now: datetime,
        stale_after: timedelta,
        *,
        gone: Callable[[str], bool] | None = None,
    ) -> int:
        """Return claims taken before ``now - stale_after`` (a crashed sender's) to pending,
        and at once those whose claimer ``gone(claimed_by)`` says has exited."""
        async with self._db.write() as conn:
            owners = await conn.scalars(
                select(deliveries.c.claimed_by)
                .where(or_(deliveries.c.status == SENDING, deliveries.c.edit == EDIT_SENDING))
                .distinct()
            )
            dead = [o for o in owners if o and gone is not None and gone(o)]
            stale = or_(
                deliveries.c.claimed_at < now - stale_after, deliveries.c.claimed_by.in_(dead)
            )
            result = await conn.execute(
                update(deliveries)
                .where(deliveries.c.status == SENDING, stale)
                .values(status=PENDING, claimed_by=None)
            )
            await conn.execute(
                update(deliveries)
                .where(deliveries.c.edit == EDIT_SENDING, stale)
                .values(edit=EDIT_PENDING, claimed_by=None)
            )
        return max(result.rowcount, 0)

    async def claim(
        self, now: datetime, limit: int, *, chat_id: int | None = None, owner: str | None = None
    ) -> list[Delivery]:
        """Claim up to ``limit`` due rows, oldest first (only ``chat_id``'s when given). A row
        another sender claimed first is skipped: the UPDATE only succeeds while the row is
        still pending (and on PostgreSQL rows locked by another claim are skipped). A row
        whose chat no longer follows any of the story's topics (it unsubscribed while the
        row waited) ends as dead instead of being sent."""
        query = _due(
            deliveries.c.status == PENDING, limit, chat_id, oldest=deliveries.c.next_attempt
        ).where(deliveries.c.next_attempt <= now, one_by_one())
        async with self._db.write() as conn:
            claimed = await take(
                conn, query, deliveries.c.status == PENDING, {"status": SENDING}, now, owner
            )
            return await load(conn, claimed)

    async def claim_edits(
        self, now: datetime, limit: int, *, chat_id: int | None = None, owner: str | None = None
    ) -> list[EditJob]:
        """Claim up to ``limit`` due edits of sent alerts. An alert Telegram no longer lets
        us edit (older than ``EDITABLE_FOR``) or with no new source is settled unsent."""
        query = _due(
            and_(deliveries.c.status == SENT, deliveries.c.edit == EDIT_PENDING),
            limit,
            chat_id,
            oldest=deliveries.c.next_attempt,
        ).where(deliveries.c.next_attempt <= now)
        async with self._db.write() as conn:
            claimed = await take(
                conn, query, deliveries.c.edit == EDIT_PENDING, {"edit": EDIT_SENDING}, now, owner
            )
            rows = {
                r.id: r
                for r in await conn.execute(select(deliveries).where(deliveries.c.id.in_(claimed)))
            }
            jobs = []
            for delivery in await load(conn, claimed, claiming=False):
                row = rows[delivery.id]
                job = EditJob(
                    id=delivery.id,
                    chat_id=delivery.chat_id,
                    message_id=int(row.message_id or 0),
                    story=delivery.story,
                    shown=tuple(row.sources_sent or ()),
                    sent_at=row.sent_at,
                    attempts=delivery.attempts,
                    language=delivery.language,
                    timezone=delivery.timezone,
                )
                too_old = job.sent_at is None or now - job.sent_at > EDITABLE_FOR
                # A digest lists many stories: editing it as one alert would erase the rest.
                if too_old or not job.added or not job.message_id or row.in_digest:
                    await _settle_edit(conn, job.id, None)
                else:
                    jobs.append(job)
            return jobs

    async def mark_sent(
        self,
        delivery_id: int,
        message_id: int,
        now: datetime,
        *,
        sources: Sequence[str] = (),
    ) -> None:
        """Telegram has the message; ``sources`` are the source names it lists."""
        await self._set(
            delivery_id,
            status=SENT,
            message_id=message_id,
            sent_at=now,
            sources_sent=list(sources),
            claimed_by=None,
        )

    async def finish_edit(
        self, delivery_id: int, *, sources: Sequence[str] | None, error: str | None = None
    ) -> None:
        """The edit is done (``sources`` now shown) or abandoned (``error`` says why); either
        way the alert stays sent. A source that joined meanwhile queues the next edit."""
        async with self._db.write() as conn:
            await _settle_edit(conn, delivery_id, sources, error)

    async def retry_edit(
        self, delivery_id: int, error: str | None, next_attempt: datetime, *, count: bool = True
    ) -> None:
        """Try the edit again at ``next_attempt`` (transient failure, pacing, shutdown)."""
        values: dict[str, object] = {"edit": EDIT_PENDING, "next_attempt": next_attempt}
        if error is not None:
            values["last_error"] = f"edit: {error}"
        if count:
            values["attempts"] = deliveries.c.attempts + 1
        await self._set(delivery_id, claimed_by=None, **values)

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
        await self._set(delivery_id, status=PENDING, next_attempt=next_attempt, claimed_by=None)

    async def next_due(
        self, *, chat_id: int | None = None, now: datetime | None = None
    ) -> datetime | None:
        """When the earliest pending row or edit becomes due, or None when nothing waits.
        With ``now``, rows of muted chats and of digest chats do not count: they are not due
        before the mute ends or the next digest time (``bot.store.digests``)."""
        waiting = or_(
            deliveries.c.status == PENDING,
            and_(deliveries.c.status == SENT, deliveries.c.edit == EDIT_PENDING),
        )
        query = (
            select(func.min(deliveries.c.next_attempt))
            .join(chats, chats.c.chat_id == deliveries.c.chat_id)
            .where(waiting, chats.c.active)
        )
        if now is not None:
            query = query.where(or_(one_by_one(), chats.c.muted_until <= now))
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

    async def report(self, now: datetime, *, dead_limit: int = 20) -> OutboxReport:
        """The queue as operators see it (``newsbot outbox``, ``/status``): rows per status,
        per chat pending/dead counts with the oldest pending row, the latest dead rows."""
        async with self._db.read() as conn:
            per_chat = await conn.execute(
                select(
                    deliveries.c.chat_id,
                    deliveries.c.status,
                    func.count(),
                    func.min(deliveries.c.created),
                )
                .where(deliveries.c.status.in_((PENDING, SENDING, DEAD)))
                .group_by(deliveries.c.chat_id, deliveries.c.status)
            )
            queues = _chat_queues(per_chat)
            dead = await conn.execute(
                select(
                    deliveries.c.chat_id,
                    stories.c.title,
                    deliveries.c.last_error,
                    deliveries.c.attempts,
                    deliveries.c.created,
                )
                .join(stories, stories.c.id == deliveries.c.story_id)
                .where(deliveries.c.status == DEAD)
                .order_by(deliveries.c.id.desc())
                .limit(dead_limit)
            )
            edits = await conn.scalar(
                select(func.count()).where(
                    deliveries.c.status == SENT, deliveries.c.edit.in_((EDIT_PENDING, EDIT_SENDING))
                )
            )
            counts = await conn.execute(
                select(deliveries.c.status, func.count()).group_by(deliveries.c.status)
            )
            return OutboxReport(
                now=now,
                counts={status: int(n) for status, n in counts},
                edits_pending=int(edits or 0),
                chats=tuple(queues),
                dead=tuple(DeadRow(r[0], r[1], r[2] or "", r[3], r[4]) for r in dead),
            )

    async def _set(self, delivery_id: int, **values: object) -> None:
        async with self._db.write() as conn:
            await conn.execute(
                update(deliveries).where(deliveries.c.id == delivery_id).values(**values)
            )


def one_by_one() -> ColumnElement[bool]:
    """Chats whose alerts go out one by one: not muted, no mute to release, no digest. The
    others' rows go out together as digests (``bot.store.digests``)."""
    return and_(chats.c.muted_until.is_(None), chats.c.digest.is_(None))


def _due(condition: object, limit: int, chat_id: int | None, *, oldest: object) -> Select[Any]:
    query = (
        select(deliveries.c.id)
        .join(chats, chats.c.chat_id == deliveries.c.chat_id)
        .where(condition, chats.c.active)  # type: ignore[arg-type]
        .order_by(oldest, deliveries.c.id)  # type: ignore[arg-type]
        .limit(limit)
    )
    if chat_id is not None:
        query = query.where(deliveries.c.chat_id == chat_id)
    return query


async def take(
    conn: AsyncConnection,
    query: Select[Any],
    still: object,
    values: dict[str, object],
    now: datetime,
    owner: str | None,
) -> list[int]:
    """Compare-and-set each due id: only an UPDATE that still finds ``still`` true claims.
    PostgreSQL also locks the rows, skipping those another transaction holds."""
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(of=deliveries, skip_locked=True)
    claimed: list[int] = []
    for delivery_id in list(await conn.scalars(query)):
        result = await conn.execute(
            update(deliveries)
            .where(deliveries.c.id == delivery_id, still)  # type: ignore[arg-type]
            .values(claimed_at=now, claimed_by=owner, **values)
        )
        if result.rowcount == 1:
            claimed.append(delivery_id)
    return claimed


async def _settle_edit(
    conn: AsyncConnection,
    delivery_id: int,
    sources: Sequence[str] | None,
    error: str | None = None,
) -> None:
    values: dict[str, object] = {"edit": None, "claimed_by": None}
    if sources is not None:
        values["sources_sent"] = list(sources)
    if error is not None:
        values["last_error"] = f"edit: {error}"
    await conn.execute(
        update(deliveries)
        .where(deliveries.c.id == delivery_id, deliveries.c.edit == EDIT_SENDING)
        .values(values)
    )


def _chat_queues(rows: object) -> list[ChatQueue]:
    by_chat: dict[int, dict[str, object]] = defaultdict(dict)
    for chat_id, status, n, oldest in rows:  # type: ignore[attr-defined]
        entry = by_chat[chat_id]
        key = "dead" if status == DEAD else "pending"
        entry[key] = int(entry.get(key, 0)) + int(n)  # type: ignore[call-overload]
        if status != DEAD:
            first = entry.get("oldest")
            entry["oldest"] = oldest if first is None or oldest < first else first
    return sorted(
        (
            ChatQueue(
                chat_id=chat_id,
                pending=int(v.get("pending", 0)),  # type: ignore[call-overload]
                dead=int(v.get("dead", 0)),  # type: ignore[call-overload]
                oldest_pending=v.get("oldest"),  # type: ignore[arg-type]
            )
            for chat_id, v in by_chat.items()
        ),
        key=lambda q: (-q.pending, -q.dead, q.chat_id),
    )


async def load(
    conn: AsyncConnection, ids: Sequence[int], *, claiming: bool = True
) -> list[Delivery]:
    """Claimed rows with everything render needs: story, sources, and the topics (and their
    keywords) that brought it to this chat. ``claiming``: a row whose chat unsubscribed
    meanwhile ends as dead (for an edit it only loses the edit)."""
    if not ids:
        return []
    rows = (
        await conn.execute(
            select(deliveries, chats.c.thread_id, chats.c.language, chats.c.timezone)
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
        if delivery is None and not claiming:
            await _settle_edit(conn, r.id, None)
        elif delivery is None:
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
        language=r["language"],
        timezone=r["timezone"],
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

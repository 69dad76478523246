"""Held alerts released together: after a mute ends, and at a digest chat's digest times.

Rows of a muted chat or a digest chat stay pending in the outbox (``outbox.claim`` only hands
out rows of chats whose alerts go one by one). ``waiting`` lists the chats that may have a
digest to send; the delivery side decides, per chat, which rows are due (a pure rule,
``bot.telegram.options.release_cutoff``) and ``claim`` claims them in one go, compare-and-set
like any claim, so two senders never send the same rows.

An ended mute is cleared (``muted_until`` back to NULL) only once nothing it held is left:
until then its chat stays on the digest path, so rows whose digest failed and went back to
pending are retried as a digest, not one by one. Clearing requires ``muted_until <= now``,
so a new ``/mute`` given meanwhile is never erased.

A digest is sent as one message, or as a few when its stories do not fit in one; each row
records the message it went out in and ``in_digest``, so no later edit rewrites a digest as
a single alert.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, exists, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.model import Delivery
from bot.store.engine import Database
from bot.store.outbox import load, take
from bot.store.schema import PENDING, SENDING, SENT, chats, deliveries

# One digest claims at most this many rows; more go out in the next digest a moment later.
MAX_ROWS = 200


@dataclass(frozen=True, slots=True)
class DigestChat:
    """A chat that may have held rows to release: its mute end and digest setting."""

    chat_id: int
    muted_until: datetime | None
    digest: str | None
    timezone: str | None


@dataclass(frozen=True, slots=True)
class DigestJob:
    """Claimed rows of one chat, to send together, oldest first. ``after_mute``: the
    release of a mute (else a scheduled digest)."""

    chat_id: int
    deliveries: tuple[Delivery, ...]
    after_mute: bool
    thread_id: int | None = None
    language: str | None = None
    timezone: str | None = None


class DigestStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def waiting(self, now: datetime, *, chat_id: int | None = None) -> list[DigestChat]:
        """Active chats whose mute has ended (with or without held rows: the mute must be
        cleared either way), and digest chats with a pending row due."""
        has_due_row = exists().where(
            deliveries.c.chat_id == chats.c.chat_id,
            deliveries.c.status == PENDING,
            deliveries.c.next_attempt <= now,
        )
        query = select(
            chats.c.chat_id, chats.c.muted_until, chats.c.digest, chats.c.timezone
        ).where(
            chats.c.active,
            or_(
                chats.c.muted_until <= now,
                and_(chats.c.muted_until.is_(None), chats.c.digest.is_not(None), has_due_row),
            ),
        )
        if chat_id is not None:
            query = query.where(chats.c.chat_id == chat_id)
        async with self._db.read() as conn:
            return [DigestChat(*row) for row in await conn.execute(query)]

    async def claim(
        self,
        chat: DigestChat,
        cutoff: datetime,
        now: datetime,
        *,
        owner: str | None = None,
        limit: int = MAX_ROWS,
    ) -> DigestJob | None:
        """Claim ``chat``'s pending rows due by ``now`` and queued at or before ``cutoff``.
        None when there is nothing to send now; then an ended mute with nothing left held is
        cleared."""
        query = (
            select(deliveries.c.id)
            .where(
                deliveries.c.chat_id == chat.chat_id,
                deliveries.c.status == PENDING,
                deliveries.c.next_attempt <= now,
                deliveries.c.created <= cutoff,
            )
            .order_by(deliveries.c.created, deliveries.c.id)
            .limit(limit)
        )
        after_mute = chat.muted_until is not None and chat.muted_until <= now
        async with self._db.write() as conn:
            claimed = await take(
                conn, query, deliveries.c.status == PENDING, {"status": SENDING}, now, owner
            )
            rows = await load(conn, claimed)
            if after_mute and not rows:
                await _clear_ended_mute(conn, chat.chat_id, now)
        if not rows:
            return None
        first = rows[0]
        return DigestJob(
            chat_id=chat.chat_id,
            deliveries=tuple(rows),
            after_mute=after_mute,
            thread_id=first.thread_id,
            language=first.language,
            timezone=first.timezone,
        )

    async def mark_sent(self, rows: Sequence[Delivery], message_id: int, now: datetime) -> None:
        """Telegram has the digest message listing ``rows`` (of one chat); an ended mute with
        nothing left held is cleared."""
        async with self._db.write() as conn:
            for row in rows:
                await conn.execute(
                    update(deliveries)
                    .where(deliveries.c.id == row.id)
                    .values(
                        status=SENT,
                        message_id=message_id,
                        sent_at=now,
                        sources_sent=list(row.story.sources),
                        in_digest=True,
                        claimed_by=None,
                    )
                )
            if rows:
                await _clear_ended_mute(conn, rows[0].chat_id, now)


async def _clear_ended_mute(conn: AsyncConnection, chat_id: int, now: datetime) -> None:
    held = exists().where(
        deliveries.c.chat_id == chat_id, deliveries.c.status.in_((PENDING, SENDING))
    )
    await conn.execute(
        update(chats)
        .where(chats.c.chat_id == chat_id, chats.c.muted_until <= now, ~held)
        .values(muted_until=None)
    )

"""Drains the outbox: claim, pace, render, send, record.

Failures are sorted as Telegram means them (see ``DeliveryError``):
- ``retry_after`` (429): that chat waits the given time; the row is retried then.
- chat gone (403: blocked, kicked): the chat is deactivated and its queued rows end as dead.
- migrated group: the chat's id is rewritten everywhere and the row is retried at once.
- other permanent errors (400): the row ends as dead with the reason, visible to operators.
- transient (5xx, timeouts, dropped connections): retried with backoff until the row is
  ``GIVE_UP_AFTER`` old.
- the bot itself refused (token revoked, 401/404 from the API root): every send is held and
  retried; no row is lost to an operator's mistake.
Nothing is dropped silently: every outcome is written to the row.

Throughput: rows are claimed as sending slots free up (not batch after batch), and each
send books its budget with ``Pacer.acquire`` right before it goes out, so sends to different
chats run in parallel up to Telegram's overall 30/s while no chat's own limit is exceeded.

Edits: when a later source joins a story already sent, the alert is edited to list it
("also: …"), paced like a send. Edit failures never resend anything: a refused edit (too
old, message deleted) is settled with the reason; a transient one is retried.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, tzinfo
from functools import lru_cache, partial
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot import pacing
from bot.errors import DeliveryError
from bot.model import Delivery
from bot.store import Store
from bot.store.digests import DigestJob
from bot.store.outbox import EDITABLE_FOR, EditJob
from bot.telegram.i18n import pick_language
from bot.telegram.options import release_cutoff
from bot.telegram.render import render_alert, render_digest

log = logging.getLogger(__name__)

STALE_CLAIM = timedelta(minutes=5)
# Transient failures are retried until a row is this old: an outage of hours loses nothing;
# news older than a week is not worth sending (polling.max_age's default).
GIVE_UP_AFTER = timedelta(days=7)
# A send waits inline for its chat's budget up to this long; longer, the row is deferred.
MAX_INLINE_WAIT = 1.5
RECORD_RETRIES = (0.5, 2.0, 5.0)


class Transport(Protocol):
    async def send(self, chat_id: int, html: str, *, thread_id: int | None = None) -> int: ...

    async def edit(self, chat_id: int, message_id: int, html: str) -> None: ...


def claimer_id() -> str:
    """``host:pid``: who holds a claim, so a restarted sender can release a dead one's."""
    return f"{socket.gethostname()}:{os.getpid()}"


def claimer_gone(owner: str) -> bool:
    """Whether the claimer ``host:pid`` is a process on this host that no longer exists.
    Another host's claims are never judged here (they expire after ``STALE_CLAIM``)."""
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # exists, owned by someone else
        return False
    return False


@dataclass(slots=True)
class DrainReport:
    sent: int = 0
    edited: int = 0
    retried: int = 0
    dead: int = 0
    pending: int = 0
    errors: list[str] = field(default_factory=list)


class Deliverer:
    def __init__(
        self,
        store: Store,
        transport: Transport,
        *,
        clock: Callable[[], datetime],
        tz: tzinfo,
        pacer: pacing.Pacer | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        only_chat: int | None = None,
        redact: Callable[[str], str] = str,
        give_up_after: timedelta = GIVE_UP_AFTER,
        batch: int = 60,
        concurrency: int = 32,
    ) -> None:
        self._store = store
        self._transport = transport
        self._clock = clock
        self._tz = tz
        self._pacer = pacer or pacing.Pacer()
        self._monotonic = monotonic
        self._sleep = sleep
        self._only_chat = only_chat
        self._redact = redact
        self._give_up_after = give_up_after
        self._batch = batch
        self._slots = asyncio.Semaphore(concurrency)
        self._owner = claimer_id()
        self._lock = asyncio.Lock()
        self._gone: set[int] = set()  # chats deactivated while their rows were in flight

    async def drain(
        self, *, stop: asyncio.Event | None = None, wait_until: datetime | None = None
    ) -> DrainReport:
        """Send every due row. With ``wait_until``, also wait for rows that become due (retries,
        paced rows) before that time. Stops claiming when ``stop`` is set; in-flight sends
        finish, claimed rows not yet sent are handed back."""
        stop = stop or asyncio.Event()
        report = DrainReport()
        async with self._lock:  # one drainer per process: the pacer's budgets are shared
            self._gone.clear()
            await self._store.outbox.release_stale(self._clock(), STALE_CLAIM, gone=claimer_gone)
            running: set[asyncio.Task[None]] = set()
            try:
                while not stop.is_set():
                    if len(running) < self._batch:
                        running |= await self._claim_more(self._batch - len(running), stop, report)
                    if running:
                        await self._next_done(running, stop)
                    elif not await self._wait_for_due(wait_until, stop):
                        break
            finally:
                await asyncio.gather(*running)
        report.pending = (await self._store.outbox.counts()).get("pending", 0)
        return report

    async def _claim_more(
        self, room: int, stop: asyncio.Event, report: DrainReport
    ) -> set[asyncio.Task[None]]:
        """Claim up to ``room`` due digests, rows, then edits, and start sending each."""
        now, owner = self._clock(), self._owner
        digests = await self._claim_digests(room, now)
        room -= len(digests)
        rows = await self._store.outbox.claim(now, room, chat_id=self._only_chat, owner=owner)
        edits: list[EditJob] = []
        if len(rows) < room:
            edits = await self._store.outbox.claim_edits(
                now, room - len(rows), chat_id=self._only_chat, owner=owner
            )
        jobs = [
            self._guarded(self._send_digest(j, stop, report), j.deliveries[0].id, j.chat_id)
            for j in digests
        ]
        jobs += [self._guarded(self._send_paced(d, stop, report), d.id, d.chat_id) for d in rows]
        jobs += [self._guarded(self._edit_paced(e, stop, report), e.id, e.chat_id) for e in edits]
        return {asyncio.ensure_future(job) for job in jobs}

    async def _claim_digests(self, room: int, now: datetime) -> list[DigestJob]:
        """Claim the digests due now: held rows of chats whose mute ended (clearing the mute)
        and of digest chats whose digest time passed."""
        jobs: list[DigestJob] = []
        for chat in await self._store.digests.waiting(now, chat_id=self._only_chat):
            if len(jobs) >= room:
                break
            cutoff = release_cutoff(chat.muted_until, chat.digest, self._zone(chat.timezone), now)
            if cutoff is None:
                continue
            job = await self._store.digests.claim(chat, cutoff, now, owner=self._owner)
            if job is not None:
                jobs.append(job)
        return jobs

    async def _next_done(self, running: set[asyncio.Task[None]], stop: asyncio.Event) -> None:
        """Wait until some sends finished (or a moment passed, to claim newly due rows)."""
        done, _ = await asyncio.wait(running, timeout=0.25, return_when=asyncio.FIRST_COMPLETED)
        running -= done

    async def idle(self) -> None:
        """Return once no drain is running (in-flight sends have finished)."""
        async with self._lock:
            return

    async def _wait_for_due(self, wait_until: datetime | None, stop: asyncio.Event) -> bool:
        if wait_until is None:
            return False
        due = await self._store.outbox.next_due(chat_id=self._only_chat, now=self._clock())
        if due is None or due > wait_until:
            return False
        await self._pause((due - self._clock()).total_seconds(), stop)
        return not stop.is_set()

    async def _pause(self, seconds: float, stop: asyncio.Event) -> None:
        """Sleep ``seconds``, or less when ``stop`` is set meanwhile."""
        if seconds <= 0 or stop.is_set():
            return
        sleeper = asyncio.ensure_future(self._sleep(seconds))
        stopper = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({sleeper, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sleeper, stopper):
                task.cancel()

    async def _guarded(self, job: Awaitable[None], delivery_id: int, chat_id: int) -> None:
        """One row, start to end. Never raises: a database failure here is logged and leaves
        the row claimed, to be released after ``STALE_CLAIM``; other rows go on."""
        try:
            async with self._slots:
                await job
        except Exception:
            log.exception(
                "delivery %s to chat %s: could not record the outcome; the row is retried after %s",
                delivery_id,
                chat_id,
                STALE_CLAIM,
            )

    async def _budget(self, chat_id: int, stop: asyncio.Event) -> float:
        """Book a send to ``chat_id``: 0 when booked, else how long its budget is spent (more
        than ``MAX_INLINE_WAIT``: the caller hands the row back), or -1 when stop came."""
        while True:
            wait = self._pacer.acquire(chat_id, self._monotonic())
            if wait <= 0:
                return 0.0
            if wait > MAX_INLINE_WAIT:
                return wait
            await self._pause(wait, stop)
            if stop.is_set():
                return -1.0

    async def _send_paced(
        self, delivery: Delivery, stop: asyncio.Event, report: DrainReport
    ) -> None:
        if stop.is_set():
            await self._store.outbox.defer(delivery.id, self._clock())
            return
        try:  # rendered before booking: the send goes out right after its budget is booked
            html = render_alert(
                delivery.story,
                tz=self._zone(delivery.timezone),
                lang=pick_language(delivery.language),
            )
        except Exception as e:  # a bug in rendering must not lose the row
            log.exception("rendering delivery %s failed", delivery.id)
            await self._retry(delivery, self._redact(f"internal error: {e!r}"), None, report)
            return
        wait = await self._budget(delivery.chat_id, stop)
        if wait != 0:
            # This chat's budget is spent (or we are stopping): hand the row back for later
            # rather than hold a sending slot while other chats wait behind it.
            later = self._clock() + timedelta(seconds=max(wait, 0.0))
            await self._store.outbox.defer(delivery.id, later)
            return
        if delivery.chat_id in self._gone:
            return  # deactivating the chat already ended this row as dead
        try:
            message_id = await self._transport.send(
                delivery.chat_id, html, thread_id=delivery.thread_id
            )
        except DeliveryError as e:
            await self._failed(delivery, e, report)
            return
        except Exception as e:  # a bug in a transport must not lose the row
            log.exception("delivery %s to chat %s failed", delivery.id, delivery.chat_id)
            reason = self._redact(f"internal error: {type(e).__name__}: {e}")
            await self._retry(delivery, reason, None, report)
            return
        await self._record(
            lambda: self._store.outbox.mark_sent(
                delivery.id, message_id, self._clock(), sources=delivery.story.sources
            ),
            f"delivery {delivery.id}",
        )
        report.sent += 1

    async def _send_digest(self, job: DigestJob, stop: asyncio.Event, report: DrainReport) -> None:
        """Send ``job``'s rows as one digest message (a few when they do not fit in one).
        A failure settles the rows not yet sent as a failed single alert would be."""
        rows = list(job.deliveries)
        try:
            pages = render_digest(
                [d.story for d in rows],
                after_mute=job.after_mute,
                tz=self._zone(job.timezone),
                lang=pick_language(job.language),
            )
        except Exception as e:  # a bug in rendering must not lose the rows
            log.exception("rendering a digest for chat %s failed", job.chat_id)
            for delivery in rows:
                await self._retry(delivery, self._redact(f"internal error: {e!r}"), None, report)
            return
        for html, count in pages:
            wait = -1.0 if stop.is_set() else await self._budget(job.chat_id, stop)
            if wait != 0:
                later = self._clock() + timedelta(seconds=max(wait, 0.0))
                for delivery in rows:
                    await self._store.outbox.defer(delivery.id, later)
                return
            try:
                message_id = await self._transport.send(job.chat_id, html, thread_id=job.thread_id)
            except DeliveryError as e:
                for delivery in rows:
                    await self._failed(delivery, e, report)
                return
            except Exception as e:  # a bug in a transport must not lose the rows
                log.exception("a digest to chat %s failed", job.chat_id)
                reason = self._redact(f"internal error: {type(e).__name__}: {e}")
                for delivery in rows:
                    await self._retry(delivery, reason, None, report)
                return
            sent, rows = rows[:count], rows[count:]
            await self._record(
                partial(self._mark_digest_sent, sent, message_id),
                f"a digest to chat {job.chat_id}",
            )
            report.sent += len(sent)

    def _zone(self, name: str | None) -> tzinfo:
        """A chat's chosen time zone; the display default when none or not known here."""
        return _zone_named(name) or self._tz if name else self._tz

    async def _edit_paced(self, job: EditJob, stop: asyncio.Event, report: DrainReport) -> None:
        """Edit a sent alert to list the sources that joined since. Never sends anew."""
        wait = -1.0 if stop.is_set() else await self._budget(job.chat_id, stop)
        if wait != 0:
            later = self._clock() + timedelta(seconds=max(wait, 0.0))
            await self._store.outbox.retry_edit(job.id, None, later, count=False)
            return
        shown = replace(job.story, sources=job.shown)
        try:
            lang = pick_language(job.language)
            html = render_alert(shown, tz=self._zone(job.timezone), lang=lang, also=job.added)
            await self._transport.edit(job.chat_id, job.message_id, html)
        except DeliveryError as e:
            await self._edit_failed(job, e)
            return
        except Exception as e:
            log.exception("editing delivery %s in chat %s failed", job.id, job.chat_id)
            await self._store.outbox.finish_edit(job.id, sources=None, error=f"internal: {e!r}")
            return
        await self._store.outbox.finish_edit(job.id, sources=job.story.sources)
        report.edited += 1

    async def _edit_failed(self, job: EditJob, e: DeliveryError) -> None:
        reason = str(e)
        now = self._clock()
        if e.chat_gone:
            self._gone.add(job.chat_id)
            await self._store.chats.deactivate(job.chat_id, reason)
            await self._store.outbox.finish_edit(job.id, sources=None, error=reason)
        elif e.retry_after is not None and not e.permanent:
            scope = None if e.bot_wide else job.chat_id
            self._pacer.hold(scope, self._monotonic() + e.retry_after)
            later = now + timedelta(seconds=e.retry_after)
            await self._store.outbox.retry_edit(job.id, reason, later, count=False)
        elif e.permanent or job.sent_at is None or now - job.sent_at > EDITABLE_FOR:
            # Refused (deleted message, migrated group, too old): the alert stays as it is.
            await self._store.outbox.finish_edit(job.id, sources=None, error=reason)
        else:
            delay = pacing.delivery_delay(job.attempts + 1)
            await self._store.outbox.retry_edit(job.id, reason, now + delay)

    async def _mark_digest_sent(self, rows: list[Delivery], message_id: int) -> None:
        await self._store.digests.mark_sent(rows, message_id, self._clock())

    async def _record(self, mark_sent: Callable[[], Awaitable[None]], what: str) -> None:
        """Telegram has the message: record it, retrying a failing database a few times. The
        rows never go back to pending, which would send them again."""
        for pause in RECORD_RETRIES:
            try:
                await mark_sent()
                return
            except Exception:
                log.warning("%s sent, recording it failed; retrying", what)
                await self._sleep(pause)
        await mark_sent()

    async def _failed(self, delivery: Delivery, e: DeliveryError, report: DrainReport) -> None:
        reason = str(e)
        report.errors.append(reason)
        if e.bot_wide:
            log.error("Telegram refuses the bot itself, holding every send: %s", reason)
            self._pacer.hold(None, self._monotonic() + (e.retry_after or 60.0))
            await self._retry(delivery, reason, e.retry_after, report, count=False)
        elif e.retry_after is not None:
            self._pacer.hold(delivery.chat_id, self._monotonic() + e.retry_after)
            await self._retry(delivery, reason, e.retry_after, report, count=False)
        elif e.migrated_to is not None:
            log.info("chat %s migrated to %s", delivery.chat_id, e.migrated_to)
            await self._store.chats.migrate(delivery.chat_id, e.migrated_to)
            await self._retry(delivery, reason, 0.0, report, count=False)
        elif e.chat_gone:
            log.warning("chat %s is gone, deactivating it: %s", delivery.chat_id, reason)
            self._gone.add(delivery.chat_id)
            await self._store.chats.deactivate(delivery.chat_id, reason)
            report.dead += 1
        elif e.permanent:
            log.warning("delivery %s to chat %s is dead: %s", delivery.id, delivery.chat_id, reason)
            await self._store.outbox.mark_dead(delivery.id, reason)
            report.dead += 1
        else:
            await self._retry(delivery, reason, None, report)

    async def _retry(
        self,
        delivery: Delivery,
        reason: str,
        retry_after: float | None,
        report: DrainReport,
        *,
        count: bool = True,
    ) -> None:
        now = self._clock()
        if count and delivery.created is not None and now - delivery.created > self._give_up_after:
            await self._store.outbox.mark_dead(
                delivery.id, f"gave up after {now - delivery.created} undelivered: {reason}"
            )
            report.dead += 1
            return
        attempts = delivery.attempts + (1 if count else 0)
        delay = pacing.delivery_delay(attempts, retry_after=retry_after)
        await self._store.outbox.mark_retry(delivery.id, reason, now + delay, count_attempt=count)
        report.retried += 1


@lru_cache(maxsize=256)
def _zone_named(name: str) -> tzinfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None

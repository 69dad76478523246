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
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import Protocol

from bot import pacing
from bot.errors import DeliveryError
from bot.model import Delivery
from bot.store import Store
from bot.telegram.render import render_alert

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


@dataclass(slots=True)
class DrainReport:
    sent: int = 0
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
        batch: int = 30,
        concurrency: int = 8,
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
            await self._store.outbox.release_stale(self._clock(), STALE_CLAIM)
            while not stop.is_set():
                claimed = await self._store.outbox.claim(
                    self._clock(), self._batch, chat_id=self._only_chat
                )
                if claimed:
                    await self._send_batch(claimed, stop, report)
                elif not await self._wait_for_due(wait_until, stop):
                    break
        report.pending = (await self._store.outbox.counts()).get("pending", 0)
        return report

    async def idle(self) -> None:
        """Return once no drain is running (in-flight sends have finished)."""
        async with self._lock:
            return

    async def _wait_for_due(self, wait_until: datetime | None, stop: asyncio.Event) -> bool:
        if wait_until is None:
            return False
        due = await self._store.outbox.next_due(chat_id=self._only_chat)
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

    async def _send_batch(
        self, claimed: list[Delivery], stop: asyncio.Event, report: DrainReport
    ) -> None:
        await asyncio.gather(*(self._send_guarded(d, stop, report) for d in claimed))

    async def _send_guarded(
        self, delivery: Delivery, stop: asyncio.Event, report: DrainReport
    ) -> None:
        """One row, start to end. Never raises: a database failure here is logged and leaves
        the row claimed, to be released after ``STALE_CLAIM``; other rows go on."""
        try:
            async with self._slots:
                await self._send_paced(delivery, stop, report)
        except Exception:
            log.exception(
                "delivery %s to chat %s: could not record the outcome; the row is retried after %s",
                delivery.id,
                delivery.chat_id,
                STALE_CLAIM,
            )

    async def _send_paced(
        self, delivery: Delivery, stop: asyncio.Event, report: DrainReport
    ) -> None:
        wait = self._pacer.wait(delivery.chat_id, self._monotonic())
        if wait > MAX_INLINE_WAIT:
            # This chat's budget is spent: hand the row back for later rather than hold a
            # sending slot while other chats wait behind it.
            later = self._clock() + timedelta(seconds=wait)
            await self._store.outbox.defer(delivery.id, later)
            return
        await self._pause(wait, stop)
        if stop.is_set():
            await self._store.outbox.defer(delivery.id, self._clock())
            return
        if delivery.chat_id in self._gone:
            return  # deactivating the chat already ended this row as dead
        self._pacer.record(delivery.chat_id, self._monotonic())
        try:
            html = render_alert(delivery.story, tz=self._tz)
            message_id = await self._transport.send(
                delivery.chat_id, html, thread_id=delivery.thread_id
            )
        except DeliveryError as e:
            await self._failed(delivery, e, report)
            return
        except Exception as e:  # a bug in rendering or a transport must not lose the row
            log.exception("delivery %s to chat %s failed", delivery.id, delivery.chat_id)
            reason = self._redact(f"internal error: {type(e).__name__}: {e}")
            await self._retry(delivery, reason, None, report)
            return
        await self._record_sent(delivery, message_id)
        report.sent += 1

    async def _record_sent(self, delivery: Delivery, message_id: int) -> None:
        """Telegram has the message: record it, retrying a failing database a few times. The
        row never goes back to pending, which would send it again."""
        for pause in RECORD_RETRIES:
            try:
                await self._store.outbox.mark_sent(delivery.id, message_id, self._clock())
                return
            except Exception:
                log.warning("delivery %s sent, recording it failed; retrying", delivery.id)
                await self._sleep(pause)
        await self._store.outbox.mark_sent(delivery.id, message_id, self._clock())

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

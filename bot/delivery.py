"""Drains the outbox: claim, pace, render, send, record.

Failures are sorted as Telegram means them (see ``DeliveryError``):
- ``retry_after`` (429): that chat waits the given time; the row is retried then.
- chat gone (403: blocked, kicked): the chat is deactivated and its queued rows end as dead.
- migrated group: the chat's id is rewritten everywhere and the row is retried at once.
- other permanent errors (400): the row ends as dead with the reason, visible to operators.
- transient (5xx, timeouts, dropped connections): retried with backoff, up to ``MAX_ATTEMPTS``.
Nothing is dropped silently: every outcome is written to the row.
"""

from __future__ import annotations

import asyncio
import contextlib
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

MAX_ATTEMPTS = 12
STALE_CLAIM = timedelta(minutes=5)


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
        self._batch = batch
        self._slots = asyncio.Semaphore(concurrency)
        self._lock = asyncio.Lock()
        self._gone: set[int] = set()  # chats deactivated while their rows were in flight

    async def drain(
        self, *, stop: asyncio.Event | None = None, wait_until: datetime | None = None
    ) -> DrainReport:
        """Send every due row. With ``wait_until``, also wait for rows that become due (retries)
        before that time. Stops claiming when ``stop`` is set; in-flight sends finish."""
        stop = stop or asyncio.Event()
        report = DrainReport()
        async with self._lock:  # one drainer per process: the pacer's budgets are shared
            self._gone.clear()
            await self._store.outbox.release_stale(self._clock(), STALE_CLAIM)
            while not stop.is_set():
                claimed = await self._store.outbox.claim(self._clock(), self._batch)
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
        due = await self._store.outbox.next_due()
        if due is None or due > wait_until:
            return False
        delay = (due - self._clock()).total_seconds()
        if delay > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)
        return not stop.is_set()

    async def _send_batch(
        self, claimed: list[Delivery], stop: asyncio.Event, report: DrainReport
    ) -> None:
        async with asyncio.TaskGroup() as group:
            for delivery in claimed:
                group.create_task(self._send_guarded(delivery, stop, report))

    async def _send_guarded(
        self, delivery: Delivery, stop: asyncio.Event, report: DrainReport
    ) -> None:
        async with self._slots:
            if not await self._paced(delivery.chat_id, stop):
                # Stopping: hand the claimed row back untouched, for the next run.
                await self._store.outbox.mark_retry(
                    delivery.id, "not sent: shutting down", self._clock(), count_attempt=False
                )
                return
            if delivery.chat_id in self._gone:
                return  # deactivating the chat already ended this row as dead
            try:
                await self._send(delivery, report)
            except Exception as e:  # a bug in a transport must not lose the row
                log.exception("delivery %s to chat %s failed", delivery.id, delivery.chat_id)
                await self._retry(delivery, f"internal error: {e!r}", None, report)

    async def _paced(self, chat_id: int, stop: asyncio.Event) -> bool:
        while not stop.is_set():
            wait = self._pacer.wait(chat_id, self._monotonic())
            if wait <= 0:
                self._pacer.record(chat_id, self._monotonic())
                return True
            await self._sleep(wait)
        return False

    async def _send(self, delivery: Delivery, report: DrainReport) -> None:
        html = render_alert(delivery.story, tz=self._tz)
        try:
            message_id = await self._transport.send(
                delivery.chat_id, html, thread_id=delivery.thread_id
            )
        except DeliveryError as e:
            await self._failed(delivery, e, report)
            return
        await self._store.outbox.mark_sent(delivery.id, message_id, self._clock())
        report.sent += 1

    async def _failed(self, delivery: Delivery, e: DeliveryError, report: DrainReport) -> None:
        reason = str(e)
        report.errors.append(reason)
        if e.retry_after is not None:
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
        attempts = delivery.attempts + (1 if count else 0)
        if attempts >= MAX_ATTEMPTS:
            await self._store.outbox.mark_dead(
                delivery.id, f"gave up after {attempts} attempts: {reason}"
            )
            report.dead += 1
            return
        delay = pacing.delivery_delay(attempts, retry_after=retry_after)
        await self._store.outbox.mark_retry(
            delivery.id, reason, self._clock() + delay, count_attempt=count
        )
        report.retried += 1

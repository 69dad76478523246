"""The timer: APScheduler 3 jobs, one per feed, plus delivery and the rules watcher.

Each feed job is a one-shot that reschedules itself at the time its cycle asked for
(``FeedReport.next_fetch``: the feed's interval with jitter, or a backoff after errors), so a
feed that fails is polled less and less often and recovers by itself when it works again.
Jobs have ``max_instances=1`` and ``coalesce``: a slow feed is never fetched twice at once.
After a restart, feeds resume at the ``next_fetch`` stored in the database, not all at once.
A feed whose next fetch is ``decide.NEVER`` (disabled: 410 Gone) has no job at all until
``revive`` finds it enabled again in the store.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bot.decide import NEVER
from bot.model import Feed, FeedReport

log = logging.getLogger(__name__)

DELIVERY_JOB = "deliver"
RULES_JOB = "rules"


class Scheduler:
    def __init__(
        self,
        *,
        run_feed: Callable[[Feed], Awaitable[FeedReport]],
        deliver: Callable[[], Awaitable[None]],
        watch_rules: Callable[[], Awaitable[None]] | None,
        clock: Callable[[], datetime],
        retry_interval: timedelta,
        delivery_interval: float = 3.0,
        rules_interval: float = 5.0,
    ) -> None:
        self._run_feed = run_feed
        self._deliver = deliver
        self._watch_rules = watch_rules
        self._clock = clock
        self._retry_interval = retry_interval
        self._delivery_interval = delivery_interval
        self._rules_interval = rules_interval
        self._scheduler = AsyncIOScheduler(timezone="UTC")
        self._feeds: dict[str, Feed] = {}
        # Running feed cycles by url (their one-shot job has fired, so they have no job).
        self._running: dict[str, asyncio.Task[Any]] = {}

    def start(self, feeds: Sequence[Feed], next_fetch: Mapping[str, datetime | None]) -> None:
        self._scheduler.start()
        self.set_feeds(feeds, next_fetch)
        self._scheduler.add_job(
            self._deliver,
            IntervalTrigger(seconds=self._delivery_interval),
            id=DELIVERY_JOB,
            next_run_time=self._clock(),
            max_instances=1,
            coalesce=True,
        )
        if self._watch_rules is not None:
            self._scheduler.add_job(
                self._watch_rules,
                IntervalTrigger(seconds=self._rules_interval),
                id=RULES_JOB,
                max_instances=1,
                coalesce=True,
            )

    def set_feeds(self, feeds: Sequence[Feed], next_fetch: Mapping[str, datetime | None]) -> None:
        """Follow a new feed list: new feeds are scheduled, removed feeds' jobs are dropped."""
        now = self._clock()
        wanted = {f.url: f for f in feeds}
        for url in set(self._feeds) - set(wanted):
            if self._scheduler.get_job(_job_id(url)):
                self._scheduler.remove_job(_job_id(url))
        for url, feed in wanted.items():
            if url not in self._feeds or self._feeds[url] != feed:
                due = next_fetch.get(url)
                self._schedule(feed, max(due, now) if due else now)
        self._feeds = wanted

    def idle_feeds(self) -> list[str]:
        """The feeds with no job and no running cycle: those disabled (410 Gone)."""
        return [
            url
            for url in self._feeds
            if url not in self._running and self._scheduler.get_job(_job_id(url)) is None
        ]

    def revive(self, next_fetch: Mapping[str, datetime | None]) -> list[str]:
        """Schedule again the idle feeds that the store no longer holds as disabled (an
        operator ran ``newsbot feeds --enable``); returns their urls."""
        now = self._clock()
        revived = []
        for url in self.idle_feeds():
            due = next_fetch.get(url, NEVER)
            if due is not None and due >= NEVER:
                continue
            revived.append(url)
            log.info("feed %s is enabled again: fetching it", self._feeds[url].name)
            self._schedule(self._feeds[url], max(due, now) if due else now)
        return revived

    def poke_delivery(self) -> None:
        """Run delivery now rather than at its next tick (new rows were queued)."""
        job = self._scheduler.get_job(DELIVERY_JOB)
        if job is not None:
            job.modify(next_run_time=self._clock())

    async def shutdown(self, grace: float = 10.0) -> None:
        """Stop firing jobs, give running feed cycles ``grace`` seconds, then cancel them."""
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        if self._running:
            _, pending = await asyncio.wait(set(self._running.values()), timeout=grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    def _schedule(self, feed: Feed, when: datetime) -> None:
        if when >= NEVER:
            log.info("feed %s is disabled: not scheduled", feed.name)
            if self._scheduler.get_job(_job_id(feed.url)):
                self._scheduler.remove_job(_job_id(feed.url))
            return
        self._scheduler.add_job(
            self._feed_job,
            DateTrigger(run_date=when),
            args=[feed.url],
            id=_job_id(feed.url),
            replace_existing=True,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
        )

    async def _feed_job(self, url: str) -> None:
        feed = self._feeds.get(url)
        if feed is None:
            return
        task = asyncio.current_task()
        if task is not None:
            self._running[url] = task
        try:
            report = await self._run_feed(feed)
            when = report.next_fetch or self._clock() + self._retry_interval
            if report.queued:
                self.poke_delivery()
        except Exception:
            log.exception("feed cycle of %s crashed; retrying later", feed.name)
            when = self._clock() + self._retry_interval
        finally:
            self._running.pop(url, None)
        if self._scheduler.running and url in self._feeds:
            self._schedule(self._feeds[url], when)


def _job_id(url: str) -> str:
    return f"feed:{url}"

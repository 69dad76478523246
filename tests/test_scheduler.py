"""The timer: a feed job reschedules itself at its report's next_fetch; a disabled feed
(``decide.NEVER``) gets no job, neither from its report nor from the stored schedule."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from bot.decide import NEVER
from bot.model import Feed, FeedReport
from bot.scheduler import Scheduler, _job_id

A = Feed("http://127.0.0.1:9/a.xml", "A")
B = Feed("http://127.0.0.1:9/b.xml", "B")


def _scheduler(reports: dict[str, FeedReport], ran: list[str]) -> Scheduler:
    async def run_feed(feed: Feed) -> FeedReport:
        ran.append(feed.name)
        return reports[feed.url]

    async def deliver() -> None:
        return None

    return Scheduler(
        run_feed=run_feed,
        deliver=deliver,
        watch_rules=None,
        clock=lambda: datetime.now(UTC),
        retry_interval=timedelta(minutes=10),
    )


async def test_a_disabled_feed_is_dropped_and_others_rescheduled() -> None:
    later = datetime.now(UTC) + timedelta(hours=1)
    reports = {
        A.url: FeedReport(A.url, "error", error="disabled: HTTP 410", next_fetch=NEVER),
        B.url: FeedReport(B.url, "ok", next_fetch=later),
    }
    ran: list[str] = []
    scheduler = _scheduler(reports, ran)
    scheduler.start([A, B], {})
    try:
        for _ in range(200):
            if sorted(ran) == ["A", "B"]:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        assert sorted(ran) == ["A", "B"]
        jobs = scheduler._scheduler
        assert jobs.get_job(_job_id(A.url)) is None
        b_job = jobs.get_job(_job_id(B.url))
        assert b_job is not None and b_job.next_run_time == later
    finally:
        await scheduler.shutdown()


async def test_a_feed_stored_as_disabled_gets_no_job() -> None:
    ran: list[str] = []
    scheduler = _scheduler({}, ran)
    due = datetime.now(UTC) + timedelta(hours=1)
    scheduler.start([A, B], {A.url: NEVER, B.url: due})
    try:
        assert scheduler._scheduler.get_job(_job_id(A.url)) is None
        b_job = scheduler._scheduler.get_job(_job_id(B.url))
        assert b_job is not None and b_job.next_run_time == due
    finally:
        await scheduler.shutdown()
    assert ran == []


async def test_a_disabled_feed_enabled_again_in_the_store_is_revived() -> None:
    later = datetime.now(UTC) + timedelta(hours=1)
    reports = {A.url: FeedReport(A.url, "ok", next_fetch=later)}
    ran: list[str] = []
    scheduler = _scheduler(reports, ran)
    due = datetime.now(UTC) + timedelta(hours=1)
    scheduler.start([A, B], {A.url: NEVER, B.url: due})
    try:
        assert scheduler.idle_feeds() == [A.url]
        assert scheduler.revive({A.url: NEVER, B.url: due}) == [], "still disabled"
        assert scheduler.revive({A.url: None, B.url: due}) == [A.url]
        for _ in range(200):
            if ran:
                break
            await asyncio.sleep(0.01)
        assert ran == ["A"], "an enabled feed (never fetched since) is fetched at once"
        await asyncio.sleep(0.05)
        a_job = scheduler._scheduler.get_job(_job_id(A.url))
        assert a_job is not None and a_job.next_run_time == later
        assert scheduler.idle_feeds() == []
    finally:
        await scheduler.shutdown()


async def test_a_running_cycle_is_not_idle() -> None:
    release = asyncio.Event()
    started = asyncio.Event()

    async def run_feed(feed: Feed) -> FeedReport:
        started.set()
        await release.wait()
        return FeedReport(feed.url, "ok", next_fetch=datetime.now(UTC) + timedelta(hours=1))

    async def deliver() -> None:
        return None

    scheduler = Scheduler(
        run_feed=run_feed,
        deliver=deliver,
        watch_rules=None,
        clock=lambda: datetime.now(UTC),
        retry_interval=timedelta(minutes=10),
    )
    scheduler.start([A], {})
    try:
        await asyncio.wait_for(started.wait(), 5)
        assert scheduler._scheduler.get_job(_job_id(A.url)) is None, "its one-shot job fired"
        assert scheduler.idle_feeds() == [], "a feed being fetched is not disabled"
        assert scheduler.revive({A.url: None}) == []
    finally:
        release.set()
        await scheduler.shutdown()

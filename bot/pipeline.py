"""One feed cycle: fetch -> parse -> decide -> match -> one store transaction.

``FeedRunner.run(feed)`` never raises for a feed's own faults: a fetch or parse failure is
recorded on the feed (with exponential backoff) and returned as a ``FeedReport`` with status
``error``, so one broken feed never stops the others. Nothing is parsed when nothing changed:
a 304, or a body whose SHA-256 equals the last one, ends the cycle early.

- **Where**: a feed is fetched at the URL its last permanent redirect (301/308) led to, else
  at its configured URL. Changing the URL in ``feeds.yaml`` starts over (a new feed).
- **When next**: ``decide.next_fetch``: the interval with jitter, the backoff after errors,
  ``Retry-After``, and the freshness hints (``<ttl>``, Cache-Control, Expires) within bounds.
- **410 Gone** disables the feed with the reason: it is not fetched again (``next_fetch`` is
  ``decide.NEVER``, which the scheduler drops) until an operator re-enables it or changes its
  URL; ``on_disabled`` is told, so operators can be notified.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from bot import decide
from bot.dedup import canonical_url, entry_key, title_key
from bot.errors import FetchError, ParseError
from bot.matcher import Matcher
from bot.model import (
    Candidate,
    Entry,
    Feed,
    FeedReport,
    FeedState,
    FetchResult,
    ParsedFeed,
)
from bot.store import Store
from bot.store.feeds import StoredFeed

log = logging.getLogger(__name__)


class Fetcher(Protocol):
    async def get(
        self, url: str, state: FeedState, *, admit: Callable[[], Awaitable[None]] | None = None
    ) -> FetchResult: ...


ParseFn = Callable[[bytes, str, Mapping[str, str]], Awaitable[ParsedFeed]]
OnDisabled = Callable[[Feed, str], Awaitable[None]]
GONE = 410
MAX_CHANGED = 32
MAX_HELD = 64


@dataclass(frozen=True, slots=True)
class Policy:
    """The polling settings a cycle needs."""

    interval: timedelta
    backfill: timedelta
    max_age: timedelta


class FeedRunner:
    def __init__(
        self,
        *,
        fetcher: Fetcher,
        parse: ParseFn,
        store: Store,
        matcher: Callable[[], Matcher],
        policy: Policy,
        clock: Callable[[], datetime],
        jitter: Callable[[], float] = lambda: 0.0,
        on_disabled: OnDisabled | None = None,
        max_changed: int = MAX_CHANGED,
        max_held: int = MAX_HELD,
    ) -> None:
        self._fetcher = fetcher
        self._parse = parse
        self._store = store
        self._matcher = matcher
        self._policy = policy
        self._clock = clock
        self._jitter = jitter
        self._on_disabled = on_disabled
        # Changed feeds parsed and stored at once. Fetching outruns parsing and storing, so
        # without a bound a poll of 1,000 feeds held most of their parsed entries in memory
        # at the same time, waiting for the store (main RSS 190 MB -> 140 MB). Taken only
        # after the fetch, so cycles waiting for a slow host hold no place here.
        self._changed = asyncio.Semaphore(max_changed)
        # Cycles past their fetch, holding a body (or about to): fetching still outran
        # parsing, and a first poll of 1,000 feeds held up to 699 fetched bodies (20 MB) waiting
        # for a parser. A fetch is admitted once it has its host's turn (so feeds queued
        # behind a slow host hold no place), and its place is freed when its cycle ends.
        self._held = asyncio.Semaphore(max_held)

    async def run(self, feed: Feed, stored: StoredFeed | None = None) -> FeedReport:
        """One cycle of ``feed``; ``stored``: its state as just read (``FeedStore.load_all``
        for a poll of every feed), else it is read here."""
        if stored is None:
            stored = await self._store.feeds.load(feed.url)
        if stored.disabled:
            return FeedReport(feed.url, "error", error=stored.disabled, next_fetch=decide.NEVER)
        admitted = False

        async def admit() -> None:
            nonlocal admitted
            await self._held.acquire()
            admitted = True

        try:
            return await self._cycle(feed, stored, admit)
        finally:
            if admitted:
                self._held.release()

    async def _cycle(
        self, feed: Feed, stored: StoredFeed, admit: Callable[[], Awaitable[None]]
    ) -> FeedReport:
        state = stored.state
        try:
            result = await self._fetcher.get(stored.redirect_url or feed.url, state, admit=admit)
        except FetchError as e:
            if e.status == GONE:
                return await self._disable(feed, str(e))
            return await self._failed(feed, state, str(e), e.retry_after)
        now = self._clock()
        if result.not_modified:
            return await self._unchanged(feed, stored, "not_modified", now, result)
        digest = hashlib.sha256(result.content).hexdigest()
        if state.first_fetch_done and digest == state.content_hash:
            return await self._unchanged(feed, stored, "unchanged", now, result)
        async with self._changed:
            try:
                parsed = await self._parse(result.content, result.url, result.headers)
            except ParseError as e:
                return await self._failed(feed, state, str(e), None)
            return await self._store_entries(feed, stored, result, digest, parsed)

    def _next_fetch(
        self,
        feed: Feed,
        now: datetime,
        errors: int,
        *,
        retry_after: float | None = None,
        fresh_for: timedelta | None = None,
    ) -> datetime:
        interval = timedelta(seconds=feed.interval) if feed.interval else self._policy.interval
        wait = timedelta(seconds=retry_after) if retry_after is not None else None
        return decide.next_fetch(
            now, interval, errors, jitter=self._jitter(), retry_after=wait, fresh_for=fresh_for
        )

    async def _disable(self, feed: Feed, error: str) -> FeedReport:
        reason = f"disabled: {error}"
        log.error("feed %s is gone; not fetching it again: %s", feed.name, error)
        await self._store.feeds.disable(feed.url, reason, now=self._clock())
        if self._on_disabled is not None:
            await self._on_disabled(feed, reason)
        return FeedReport(feed.url, "error", error=reason, next_fetch=decide.NEVER)

    async def _failed(
        self, feed: Feed, state: FeedState, error: str, retry_after: float | None
    ) -> FeedReport:
        now = self._clock()
        errors = state.consecutive_errors + 1
        next_fetch = self._next_fetch(feed, now, errors, retry_after=retry_after)
        log.warning("feed %s failed: %s (next try %s)", feed.name, error, f"{next_fetch:%H:%M:%S}")
        await self._store.feeds.record_error(feed.url, error, now=now, next_fetch=next_fetch)
        return FeedReport(feed.url, "error", error=error, next_fetch=next_fetch)

    async def _unchanged(
        self, feed: Feed, stored: StoredFeed, status: str, now: datetime, result: FetchResult
    ) -> FeedReport:
        fresh_for = decide.freshness(result.headers, now, ttl=stored.ttl)
        next_fetch = self._next_fetch(feed, now, 0, fresh_for=fresh_for)
        await self._store.feeds.record_unchanged(
            feed.url,
            status=status,
            now=now,
            next_fetch=next_fetch,
            etag=result.etag,
            last_modified=result.last_modified,
            redirect_url=result.permanent_redirect,
        )
        return FeedReport(
            feed.url,
            "not_modified" if status == "not_modified" else "unchanged",
            next_fetch=next_fetch,
        )

    async def _store_entries(
        self,
        feed: Feed,
        stored: StoredFeed,
        result: FetchResult,
        digest: str,
        parsed: ParsedFeed,
    ) -> FeedReport:
        state = stored.state
        keyed = _unique_by_key(parsed.entries)
        seen: set[str] = set()
        if state.first_fetch_done:  # before the first stored cycle, nothing can be seen
            seen = await self._store.feeds.seen_keys(feed.url, list(keyed), feed_id=stored.feed_id)
        now = self._clock()
        matcher = self._matcher()
        candidates = [
            self._candidate(feed, key, entry, matcher, now, first_fetch=not state.first_fetch_done)
            for key, entry in keyed.items()
            if key not in seen
        ]
        fresh_for = decide.freshness(result.headers, now, ttl=parsed.ttl)
        next_fetch = self._next_fetch(feed, now, 0, fresh_for=fresh_for)
        matched, queued = await self._store.stories.save_cycle(
            feed.url,
            candidates,
            now=now,
            next_fetch=next_fetch,
            etag=result.etag,
            last_modified=result.last_modified,
            content_hash=digest,
            redirect_url=result.permanent_redirect,
        )
        if parsed.warning:
            log.info("feed %s parsed with a warning: %s", feed.name, parsed.warning)
        if (parsed.ttl, parsed.warning) != (stored.ttl, stored.warning):
            await self._store.feeds.record_notes(feed.url, ttl=parsed.ttl, warning=parsed.warning)
        return FeedReport(
            feed.url,
            "ok",
            entries=len(parsed.entries),
            new_entries=len(candidates),
            hits=matched,
            queued=queued,
            warning=parsed.warning,
            next_fetch=next_fetch,
        )

    def _candidate(
        self,
        feed: Feed,
        key: str,
        entry: Entry,
        matcher: Matcher,
        now: datetime,
        *,
        first_fetch: bool,
    ) -> Candidate:
        alert = decide.should_alert(
            entry.published,
            now,
            first_fetch=first_fetch,
            backfill=self._policy.backfill,
            max_age=self._policy.max_age,
        )
        return Candidate(
            entry=entry,
            key=key,
            canonical_url=canonical_url(entry.link),
            title_key=title_key(entry.title),
            alert=alert,
            hits=matcher.match(entry, feed),
        )


def _unique_by_key(items: Sequence[Entry]) -> dict[str, Entry]:
    """Entries by key; when a feed repeats a key, its first occurrence wins."""
    keyed: dict[str, Entry] = {}
    for entry in items:
        keyed.setdefault(entry_key(entry), entry)
    return keyed

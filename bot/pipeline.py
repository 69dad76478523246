"""One feed cycle: fetch -> parse -> decide -> match -> one store transaction.

``FeedRunner.run(feed)`` never raises for a feed's own faults: a fetch or parse failure is
recorded on the feed (with exponential backoff) and returned as a ``FeedReport`` with status
``error``, so one broken feed never stops the others. Nothing is parsed when nothing changed:
a 304, or a body whose SHA-256 equals the last one, ends the cycle early.
"""

from __future__ import annotations

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
from bot.model import Candidate, Entry, Feed, FeedReport, FeedState, FetchResult
from bot.parse import ParsedFeed
from bot.store import Store

log = logging.getLogger(__name__)


class Fetcher(Protocol):
    async def get(self, url: str, state: FeedState) -> FetchResult: ...


ParseFn = Callable[[bytes, str, Mapping[str, str]], Awaitable[ParsedFeed]]


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
    ) -> None:
        self._fetcher = fetcher
        self._parse = parse
        self._store = store
        self._matcher = matcher
        self._policy = policy
        self._clock = clock
        self._jitter = jitter

    async def run(self, feed: Feed) -> FeedReport:
        state = await self._store.feeds.state(feed.url)
        try:
            result = await self._fetcher.get(feed.url, state)
        except FetchError as e:
            return await self._failed(feed, state, str(e), e.retry_after)
        now = self._clock()
        if result.not_modified:
            return await self._unchanged(feed, "not_modified", now, result)
        digest = hashlib.sha256(result.content).hexdigest()
        if state.first_fetch_done and digest == state.content_hash:
            return await self._unchanged(feed, "unchanged", now, result)
        try:
            parsed = await self._parse(result.content, result.url, result.headers)
        except ParseError as e:
            return await self._failed(feed, state, str(e), None)
        return await self._store_entries(feed, state, result, digest, parsed)

    def _next_fetch(
        self, feed: Feed, now: datetime, errors: int, retry_after: float | None = None
    ) -> datetime:
        interval = timedelta(seconds=feed.interval) if feed.interval else self._policy.interval
        wait = timedelta(seconds=retry_after) if retry_after is not None else None
        delay = decide.fetch_delay(interval, errors, jitter=self._jitter(), retry_after=wait)
        return now + delay

    async def _failed(
        self, feed: Feed, state: FeedState, error: str, retry_after: float | None
    ) -> FeedReport:
        now = self._clock()
        next_fetch = self._next_fetch(feed, now, state.consecutive_errors + 1, retry_after)
        log.warning("feed %s failed: %s (next try %s)", feed.name, error, f"{next_fetch:%H:%M:%S}")
        await self._store.feeds.record_error(feed.url, error, now=now, next_fetch=next_fetch)
        return FeedReport(feed.url, "error", error=error, next_fetch=next_fetch)

    async def _unchanged(
        self, feed: Feed, status: str, now: datetime, result: FetchResult
    ) -> FeedReport:
        next_fetch = self._next_fetch(feed, now, 0)
        await self._store.feeds.record_unchanged(
            feed.url,
            status=status,
            now=now,
            next_fetch=next_fetch,
            etag=result.etag,
            last_modified=result.last_modified,
        )
        return FeedReport(
            feed.url,
            "not_modified" if status == "not_modified" else "unchanged",
            next_fetch=next_fetch,
        )

    async def _store_entries(
        self,
        feed: Feed,
        state: FeedState,
        result: FetchResult,
        digest: str,
        parsed: ParsedFeed,
    ) -> FeedReport:
        keyed = _unique_by_key(parsed.entries)
        seen = await self._store.feeds.seen_keys(feed.url, list(keyed))
        now = self._clock()
        matcher = self._matcher()
        candidates = [
            self._candidate(feed, key, entry, matcher, now, first_fetch=not state.first_fetch_done)
            for key, entry in keyed.items()
            if key not in seen
        ]
        next_fetch = self._next_fetch(feed, now, 0)
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

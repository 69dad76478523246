"""Pure decisions about feeds and entries: which entries alert, and when to fetch next.
Every function takes ``now`` (aware UTC) as an argument. Sending decisions live in
``pacing``.

Operator-visible rules:
- First fetch of a feed: only entries published within ``backfill`` (default 24 h) alert;
  older and undated entries are recorded as seen.
- Later fetches: any unseen entry alerts unless it is older than ``max_age`` (default 7 d), so
  a feed that rewrites its ids cannot flood. Undated unseen entries alert (they are new to us).
- Errors back a feed off exponentially, from its interval up to once a day.
"""

from __future__ import annotations

from datetime import datetime, timedelta

MAX_BACKOFF = timedelta(days=1)
FUTURE_SLACK = timedelta(hours=1)


def should_alert(
    published: datetime | None,
    now: datetime,
    *,
    first_fetch: bool,
    backfill: timedelta,
    max_age: timedelta,
) -> bool:
    """Whether a newly seen entry alerts, or is only recorded as seen."""
    if published is None:
        return not first_fetch
    if published > now + FUTURE_SLACK:
        # A date in the future is a broken clock at the source, not news from tomorrow.
        published = now
    limit = backfill if first_fetch else max_age
    return now - published <= limit


def fetch_delay(
    interval: timedelta,
    consecutive_errors: int,
    *,
    jitter: float = 0.0,
    retry_after: timedelta | None = None,
) -> timedelta:
    """Time until the next fetch of a feed.

    ``jitter`` is a number in [-1, 1] drawn by the caller; it spreads fetches over +-10 % of
    the delay so feeds on one schedule do not fire together.
    """
    delay = interval
    if consecutive_errors > 0:
        factor = 2 ** min(consecutive_errors, 20)
        delay = min(interval * factor, max(MAX_BACKOFF, interval))
    if retry_after is not None:
        delay = max(delay, min(retry_after, MAX_BACKOFF))
    return delay * (1 + 0.1 * max(-1.0, min(1.0, jitter)))

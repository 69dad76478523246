"""Pure decisions about feeds and entries: which entries alert, and when to fetch next.
Every function takes ``now`` (aware UTC) as an argument. Sending decisions live in
``pacing``.

Operator-visible rules:
- First fetch of a feed: only entries published within ``backfill`` (default 24 h) alert;
  older and undated entries are recorded as seen.
- Later fetches: any unseen entry alerts unless it is older than ``max_age`` (default 7 d), so
  a feed that rewrites its ids cannot flood. Undated unseen entries alert (they are new to us).
- Errors back a feed off exponentially, from its interval up to once a day; the first
  success after them returns it to its interval. A ``Retry-After`` (429, 503) is honoured up
  to a day.
- A freshness hint (RSS ``<ttl>``, ``Cache-Control: max-age``, ``Expires``) can make a feed
  polled less often than its interval, up to once a day, never more often.
- ``410 Gone`` disables a feed for good (``NEVER``); see ``pipeline``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

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


# --- when to fetch next: what the server and the feed ask for ------------------------------

# A hint (``<ttl>``, Cache-Control, Expires) may slow a feed down, never speed it up past its
# interval, and never push it beyond this: a server that says "a year" is polled once a day.
MAX_HINT = timedelta(days=1)
# A feed that is never fetched again (disabled: 410 Gone). The scheduler drops its job.
NEVER = datetime.max.replace(tzinfo=UTC)

_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d+)\"?\s*(?:,|$)", re.IGNORECASE)
_NO_REUSE = re.compile(r"(?:^|,)\s*(?:no-cache|no-store)\s*(?:[,=]|$)", re.IGNORECASE)


def freshness(
    headers: Mapping[str, str], now: datetime, *, ttl: float | None = None
) -> timedelta | None:
    """How long the server (``Cache-Control: max-age``, else ``Expires``) or the feed (RSS
    ``<ttl>``, in seconds here) says the document stays fresh; the longest of them, or None.

    ``headers`` have lower-case keys. ``no-cache``/``no-store`` mean "no hint", not "poll
    faster"; an Expires in the past or unparseable is no hint either.
    """
    hints = [timedelta(seconds=ttl)] if ttl and ttl > 0 else []
    control = headers.get("cache-control", "")
    max_age = _MAX_AGE.search(control)
    if max_age and not _NO_REUSE.search(control):
        hints.append(timedelta(seconds=int(max_age.group(1))))
    elif "expires" in headers and not _NO_REUSE.search(control):
        expires = _http_date(headers["expires"])
        if expires is not None and expires > now:
            hints.append(expires - now)
    return max(hints, default=None)


def next_fetch(
    now: datetime,
    interval: timedelta,
    consecutive_errors: int,
    *,
    jitter: float = 0.0,
    retry_after: timedelta | None = None,
    fresh_for: timedelta | None = None,
) -> datetime:
    """When to fetch a feed next: its interval, or the backoff after errors, or a server's
    Retry-After, or a freshness hint, whichever is latest, each within its bound."""
    base = interval
    if fresh_for is not None and consecutive_errors == 0:
        base = max(interval, min(fresh_for, max(MAX_HINT, interval)))
    return now + fetch_delay(base, consecutive_errors, jitter=jitter, retry_after=retry_after)


def _http_date(value: str) -> datetime | None:
    try:
        when = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)

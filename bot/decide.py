"""Pure decisions about time: which entries alert, when to fetch next, when to retry a send,
and how fast to send. Every function takes ``now`` (aware UTC) as an argument.

Operator-visible rules:
- First fetch of a feed: only entries published within ``backfill`` (default 24 h) alert;
  older and undated entries are recorded as seen.
- Later fetches: any unseen entry alerts unless it is older than ``max_age`` (default 7 d), so
  a feed that rewrites its ids cannot flood. Undated unseen entries alert (they are new to us).
- Errors back a feed off exponentially, from its interval up to once a day.
- A failed send is retried after 5 s, doubling up to 1 h, or after Telegram's ``retry_after``.
- Pacing follows Telegram's limits: 30 messages/s overall, 1/s per private chat, 20/min per
  group or channel (negative chat ids).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta

MAX_BACKOFF = timedelta(days=1)
DELIVERY_BASE_DELAY = timedelta(seconds=5)
DELIVERY_MAX_DELAY = timedelta(hours=1)
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


def delivery_delay(attempts: int, *, retry_after: float | None = None) -> timedelta:
    """Wait before retrying a send that has failed ``attempts`` times (1 after the first)."""
    if retry_after is not None:
        return timedelta(seconds=max(retry_after, 0.0))
    delay: timedelta = DELIVERY_BASE_DELAY * (2 ** max(0, min(attempts - 1, 20)))
    return min(delay, DELIVERY_MAX_DELAY)


@dataclass(frozen=True, slots=True)
class Limit:
    """At most ``count`` sends per ``per`` seconds."""

    count: int
    per: float


GLOBAL_LIMIT = Limit(30, 1.0)
PRIVATE_CHAT_LIMIT = Limit(1, 1.0)
GROUP_CHAT_LIMIT = Limit(20, 60.0)


@dataclass
class _Window:
    limit: Limit
    times: deque[float] = field(default_factory=deque)

    def wait(self, now: float) -> float:
        while self.times and self.times[0] <= now - self.limit.per:
            self.times.popleft()
        if len(self.times) < self.limit.count:
            return 0.0
        return self.times[0] + self.limit.per - now


class Pacer:
    """Sliding-window send budgets per scope; time is a number of seconds passed in.

    ``wait(chat_id, now)`` says how long to wait before a send to that chat is allowed;
    ``record(chat_id, now)`` books a send. A scope's ``hold(until)`` (after a 429) is honoured
    by ``wait`` too. Holds pure state only: no clock, no sleeping.
    """

    def __init__(
        self,
        *,
        overall: Limit = GLOBAL_LIMIT,
        private: Limit = PRIVATE_CHAT_LIMIT,
        group: Limit = GROUP_CHAT_LIMIT,
    ) -> None:
        self._overall = _Window(overall)
        self._private = private
        self._group = group
        self._chats: dict[int, _Window] = {}
        self._holds: dict[int | None, float] = {}

    def _chat(self, chat_id: int) -> _Window:
        window = self._chats.get(chat_id)
        if window is None:
            window = _Window(self._private if chat_id > 0 else self._group)
            self._chats[chat_id] = window
        return window

    def wait(self, chat_id: int, now: float) -> float:
        held = max(self._holds.get(chat_id, 0.0), self._holds.get(None, 0.0)) - now
        return max(0.0, held, self._overall.wait(now), self._chat(chat_id).wait(now))

    def record(self, chat_id: int, now: float) -> None:
        self._overall.times.append(now)
        self._chat(chat_id).times.append(now)

    def hold(self, chat_id: int | None, until: float) -> None:
        """Send nothing to ``chat_id`` (None: to anyone) before ``until``."""
        self._holds[chat_id] = max(self._holds.get(chat_id, 0.0), until)

"""Pure decisions about sending: how fast, and when to retry. Time is passed in.

- Pacing follows Telegram's limits: 30 messages/s overall, 1/s per private chat, 20/min per
  group or channel (negative chat ids).
- Each window is kept ``MARGIN`` (100 ms) longer than Telegram's, so that a request arriving
  a few milliseconds late or early still counts in the window it was paced for.
- ``acquire`` checks and books in one step: with many sends waiting concurrently, each one
  that woke up re-checks and only the ones that fit go, so the limits hold under
  concurrency (a check followed by a sleep and an unconditional booking would let every
  sleeper through at once).
- A failed send is retried after 5 s, doubling up to 1 h, or after Telegram's ``retry_after``.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import timedelta

DELIVERY_BASE_DELAY = timedelta(seconds=5)
DELIVERY_MAX_DELAY = timedelta(hours=1)
MARGIN = 0.1


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
    margin: float = 0.0
    times: deque[float] = field(default_factory=deque)

    def wait(self, now: float) -> float:
        per = self.limit.per + self.margin
        while self.times and self.times[0] <= now - per:
            self.times.popleft()
        if len(self.times) < self.limit.count:
            return 0.0
        return self.times[0] + per - now


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
        margin: float = MARGIN,
    ) -> None:
        self._overall = _Window(overall, margin)
        self._private = private
        self._group = group
        self._margin = margin
        self._chats: dict[int, _Window] = {}
        self._holds: dict[int | None, float] = {}

    def _chat(self, chat_id: int) -> _Window:
        window = self._chats.get(chat_id)
        if window is None:
            window = _Window(self._private if chat_id > 0 else self._group, self._margin)
            self._chats[chat_id] = window
        return window

    def wait(self, chat_id: int, now: float) -> float:
        held = max(self._holds.get(chat_id, 0.0), self._holds.get(None, 0.0)) - now
        return max(0.0, held, self._overall.wait(now), self._chat(chat_id).wait(now))

    def acquire(self, chat_id: int, now: float) -> float:
        """Book a send to ``chat_id`` at ``now`` if every budget allows it (returns 0), else
        book nothing and return how long to wait before asking again."""
        wait = self.wait(chat_id, now)
        if wait <= 0:
            self.record(chat_id, now)
        return wait

    def record(self, chat_id: int, now: float) -> None:
        self._overall.times.append(now)
        self._chat(chat_id).times.append(now)

    def hold(self, chat_id: int | None, until: float) -> None:
        """Send nothing to ``chat_id`` (None: to anyone) before ``until``."""
        self._holds[chat_id] = max(self._holds.get(chat_id, 0.0), until)

"""What subscribers type after a command, and the pure decisions on it. No I/O, no clock.

- ``/recent [n]``: n from 1 to ``MAX_RECENT`` (default ``DEFAULT_RECENT``); more is capped.
- ``/mute DURATION``: ``30m``, ``2h``, ``1h30m``, ``1d`` (``1 h`` too), from ``MIN_MUTE`` to
  ``MAX_MUTE``; a bare number is refused because minutes and hours are both plausible.
- ``/digest off | hourly | daily [HH:MM]``: stored as None, ``hourly`` or ``daily HH:MM``
  (``daily`` alone is ``daily 08:00``). ``digest_times`` says when digests go out: hourly on
  the local hour, daily at HH:MM local time, in the chat's time zone; ``release_cutoff``
  says which held rows go out now (after a mute, or at a digest time).
- Flood control: a token bucket per user. ``FloodLimit(burst, per)`` allows ``burst``
  commands at once and ``burst`` per ``per`` seconds sustained. The first command over the
  limit gets one "slow down" answer (``WARN``), later ones are dropped silently (``DROP``)
  until a token is back.

Bad input raises ``OptionError`` carrying a message key of ``bot.telegram.i18n`` and its
values, so the caller answers in the chat's language.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from enum import Enum

from bot.units import parse_duration

DEFAULT_RECENT = 5
MAX_RECENT = 20
MIN_MUTE = timedelta(minutes=1)
MAX_MUTE = timedelta(days=30)
DEFAULT_DAILY = "08:00"
HOURLY = "hourly"
DAILY = "daily"

_CLOCK = re.compile(r"([01]?\d|2[0-3])(?::?([0-5]\d))?")
_OFF = frozenset({"off", "none", "no", "0", "关", "關"})


class OptionError(ValueError):
    """Bad arguments: ``key`` names the message to show, ``values`` fill it in."""

    def __init__(self, key: str, **values: object) -> None:
        super().__init__(key)
        self.key = key
        self.values = values


def parse_count(args: Sequence[str]) -> int:
    """The n of ``/recent [n]``."""
    if not args:
        return DEFAULT_RECENT
    if len(args) > 1 or not args[0].isdigit() or int(args[0]) < 1:
        raise OptionError("recent.usage", max=MAX_RECENT)
    return min(int(args[0]), MAX_RECENT)


def parse_mute(args: Sequence[str]) -> timedelta:
    """The duration of ``/mute DURATION``."""
    text = "".join(args).lower()
    try:
        seconds = parse_duration(text)
    except ValueError:
        raise OptionError("mute.usage") from None
    length = timedelta(seconds=seconds)
    if length < MIN_MUTE:
        raise OptionError("mute.too_short")
    if length > MAX_MUTE:
        raise OptionError("mute.too_long", days=MAX_MUTE.days)
    return length


def parse_digest(args: Sequence[str]) -> str | None:
    """The stored form of ``/digest off | hourly | daily HH:MM``: None, hourly, daily HH:MM."""
    words = [w.lower() for w in args]
    if len(words) == 1 and words[0] in _OFF:
        return None
    if words == [HOURLY]:
        return HOURLY
    if words and words[0] == DAILY and len(words) <= 2:
        clock = _CLOCK.fullmatch(words[1]) if len(words) == 2 else _CLOCK.fullmatch(DEFAULT_DAILY)
        if clock:
            return f"{DAILY} {int(clock.group(1)):02d}:{clock.group(2) or '00'}"
    raise OptionError("digest.usage")


def daily_clock(spec: str) -> time | None:
    """HH:MM of a stored ``daily HH:MM`` setting; None for anything else."""
    kind, _, clock = spec.partition(" ")
    match = _CLOCK.fullmatch(clock) if kind == DAILY else None
    if match is None:
        return None
    return time(int(match.group(1)), int(match.group(2) or 0))


def digest_times(spec: str, tz: tzinfo, now: datetime) -> tuple[datetime, datetime]:
    """(the last digest time at or before ``now``, the next one after it), in UTC.

    Rows queued before the first of these are due in a digest now; the rest wait for the
    second. Raises ValueError for a setting that is neither ``hourly`` nor ``daily HH:MM``.
    """
    if spec == HOURLY:
        local = now.astimezone(tz)
        last = local.replace(minute=0, second=0, microsecond=0).astimezone(UTC)
        # Step in UTC: in a +05:30 zone the local hour starts at :30 UTC every hour.
        return last, last + timedelta(hours=1)
    clock = daily_clock(spec)
    if clock is None:
        raise ValueError(f"not a digest setting: {spec!r}")
    today = now.astimezone(tz).date()
    at_today = _at(today, clock, tz)
    if at_today <= now:
        return at_today, _at(today + timedelta(days=1), clock, tz)
    return _at(today - timedelta(days=1), clock, tz), at_today


def release_cutoff(
    muted_until: datetime | None, digest: str | None, tz: tzinfo, now: datetime
) -> datetime | None:
    """Rows of a chat queued at or before this time go out now, together, as one digest;
    None: nothing of this chat goes out as a digest now.

    A mute that has ended releases everything held (cutoff ``now``); a running mute holds
    everything; a digest chat gets what was queued before its last digest time. A chat with
    neither has no digests (its alerts go one by one). A digest setting this version does
    not understand falls back to hourly rather than holding alerts forever.
    """
    if muted_until is not None:
        return now if muted_until <= now else None
    if digest is None:
        return None
    try:
        return digest_times(digest, tz, now)[0]
    except ValueError:
        return digest_times(HOURLY, tz, now)[0]


def _at(day: date, clock: time, tz: tzinfo) -> datetime:
    return datetime.combine(day, clock, tzinfo=tz).astimezone(UTC)


class Verdict(Enum):
    OK = "ok"
    WARN = "warn"  # over the limit: answer "slow down" once
    DROP = "drop"  # still over the limit: stay silent


@dataclass(frozen=True, slots=True)
class FloodLimit:
    burst: int = 8
    per: float = 30.0

    @property
    def rate(self) -> float:
        return self.burst / self.per


@dataclass(frozen=True, slots=True)
class Bucket:
    tokens: float
    at: float
    warned: bool = False

    def full(self, now: float, limit: FloodLimit) -> bool:
        return self.tokens + (now - self.at) * limit.rate >= limit.burst


def admit(bucket: Bucket | None, now: float, limit: FloodLimit) -> tuple[Bucket, Verdict]:
    """Take one token from ``bucket`` (None: a new, full one) at ``now`` seconds."""
    if bucket is None:
        bucket = Bucket(float(limit.burst), now)
    tokens = min(float(limit.burst), bucket.tokens + max(0.0, now - bucket.at) * limit.rate)
    if tokens >= 1.0:
        return Bucket(tokens - 1.0, now), Verdict.OK
    if bucket.warned:
        return Bucket(tokens, now, warned=True), Verdict.DROP
    return Bucket(tokens, now, warned=True), Verdict.WARN


def wait_seconds(bucket: Bucket, limit: FloodLimit) -> int:
    """Whole seconds until ``bucket`` has a token again (at least 1)."""
    return max(1, int((1.0 - bucket.tokens) / limit.rate + 0.999))

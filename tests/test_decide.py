from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.decide import MAX_HINT, NEVER, fetch_delay, freshness, next_fetch, should_alert

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
DAY, WEEK = timedelta(days=1), timedelta(days=7)


@pytest.mark.parametrize(
    ("age", "first", "expected"),
    [
        (timedelta(hours=1), True, True),
        (timedelta(hours=25), True, False),
        (timedelta(hours=25), False, True),
        (timedelta(days=8), False, False),
        (timedelta(hours=-30), True, True),  # future date: treated as now
    ],
)
def test_backfill_and_max_age(age: timedelta, first: bool, expected: bool) -> None:
    assert should_alert(NOW - age, NOW, first_fetch=first, backfill=DAY, max_age=WEEK) is expected


def test_undated_entries_alert_only_after_the_first_fetch() -> None:
    assert not should_alert(None, NOW, first_fetch=True, backfill=DAY, max_age=WEEK)
    assert should_alert(None, NOW, first_fetch=False, backfill=DAY, max_age=WEEK)


def test_fetch_backoff_doubles_up_to_a_day() -> None:
    ten = timedelta(minutes=10)
    assert fetch_delay(ten, 0) == ten
    assert fetch_delay(ten, 1) == 2 * ten
    assert fetch_delay(ten, 3) == 8 * ten
    assert fetch_delay(ten, 50) == DAY
    assert fetch_delay(timedelta(days=2), 3) == timedelta(days=2)


def test_fetch_jitter_and_retry_after() -> None:
    ten = timedelta(minutes=10)
    assert fetch_delay(ten, 0, jitter=1.0) == timedelta(minutes=11)
    assert fetch_delay(ten, 0, jitter=-1.0) == timedelta(minutes=9)
    assert fetch_delay(ten, 0, retry_after=timedelta(hours=2)) == timedelta(hours=2)
    assert fetch_delay(ten, 0, retry_after=timedelta(days=9)) == DAY


# --- freshness hints and the next fetch -------------------------------------------------------

H = timedelta(hours=1)


@pytest.mark.parametrize(
    ("headers", "ttl", "expected"),
    [
        ({}, None, None),
        ({}, 1800.0, timedelta(minutes=30)),
        ({"cache-control": "public, max-age=3600"}, None, H),
        ({"cache-control": 'max-age="3600"'}, None, H),
        ({"cache-control": "s-maxage=99, max-age=60"}, 7200.0, 2 * H),  # the longest hint
        ({"cache-control": "no-store, max-age=3600"}, None, None),
        ({"cache-control": "no-cache"}, 600.0, timedelta(minutes=10)),
        ({"expires": "Sat, 28 Nov 2026 14:00:00 GMT"}, None, 2 * H),
        ({"expires": "Sat, 28 Nov 2026 10:00:00 GMT"}, None, None),  # already stale
        ({"expires": "0"}, None, None),
        (  # max-age wins over Expires (RFC 9111 4.2.1)
            {"expires": "Sat, 28 Nov 2026 14:00:00 GMT", "cache-control": "max-age=60"},
            None,
            timedelta(seconds=60),
        ),
        ({}, 0.0, None),
    ],
)
def test_freshness(headers: dict[str, str], ttl: float | None, expected: timedelta | None) -> None:
    assert freshness(headers, NOW, ttl=ttl) == expected


def test_next_fetch_bounds_the_hints() -> None:
    ten = timedelta(minutes=10)
    assert next_fetch(NOW, ten, 0) == NOW + ten
    assert next_fetch(NOW, ten, 0, fresh_for=timedelta(minutes=1)) == NOW + ten
    assert next_fetch(NOW, ten, 0, fresh_for=2 * H) == NOW + 2 * H
    assert next_fetch(NOW, ten, 0, fresh_for=30 * DAY) == NOW + MAX_HINT
    assert next_fetch(NOW, 2 * DAY, 0, fresh_for=30 * DAY) == NOW + 2 * DAY
    # After errors the backoff rules; a hint from a failing server is not one.
    assert next_fetch(NOW, ten, 2, fresh_for=2 * H) == NOW + 4 * ten
    assert next_fetch(NOW, ten, 1, retry_after=3 * H) == NOW + 3 * H
    assert next_fetch(NOW, ten, 0, jitter=1.0, fresh_for=H) == NOW + H * 1.1
    assert NEVER > NOW + 1000 * 365 * DAY

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.decide import fetch_delay, should_alert

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

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest

from bot.pacing import Limit, Pacer, delivery_delay


def test_delivery_backoff() -> None:
    assert delivery_delay(1) == timedelta(seconds=5)
    assert delivery_delay(2) == timedelta(seconds=10)
    assert delivery_delay(30) == timedelta(hours=1)
    assert delivery_delay(1, retry_after=17) == timedelta(seconds=17)


def test_pacer_private_chat_one_per_second() -> None:
    pacer = Pacer(margin=0)
    assert pacer.wait(5, 0.0) == 0
    pacer.record(5, 0.0)
    assert pacer.wait(5, 0.5) == pytest.approx(0.5)
    assert pacer.wait(6, 0.5) == 0
    assert pacer.wait(5, 1.0) == 0


def test_pacer_group_twenty_per_minute_and_global_thirty_per_second() -> None:
    pacer = Pacer(margin=0)
    for i in range(20):
        assert pacer.wait(-100, i * 0.1) == 0
        pacer.record(-100, i * 0.1)
    assert pacer.wait(-100, 2.0) == pytest.approx(58.0)
    overall = Pacer(overall=Limit(3, 1.0), margin=0)
    for chat in (1, 2, 3):
        overall.record(chat, 0.0)
    assert overall.wait(4, 0.2) == pytest.approx(0.8)


def test_pacer_hold_after_retry_after() -> None:
    pacer = Pacer()
    pacer.hold(7, 30.0)
    assert pacer.wait(7, 10.0) == pytest.approx(20.0)
    assert pacer.wait(8, 10.0) == 0
    pacer.hold(None, 12.0)
    assert pacer.wait(8, 10.0) == pytest.approx(2.0)


def test_windows_are_kept_a_margin_longer_than_telegrams() -> None:
    pacer = Pacer(margin=0.05)
    pacer.record(5, 0.0)
    assert pacer.wait(5, 1.0) == pytest.approx(0.05)
    assert pacer.wait(5, 1.05) == 0


def test_acquire_books_only_what_fits_when_many_wake_at_once() -> None:
    """Many senders sleeping on one budget wake together: only as many go as it allows."""
    pacer = Pacer(overall=Limit(30, 1.0), margin=0)
    booked = [pacer.acquire(chat, 0.0) == 0 for chat in range(1, 41)]
    assert booked.count(True) == 30
    waits = [pacer.acquire(chat, 0.5) for chat in range(31, 41)]
    assert all(w == pytest.approx(0.5) for w in waits)
    woke = [pacer.acquire(chat, 1.0) == 0 for chat in range(31, 71)]
    assert woke.count(True) == 30


def test_sliding_windows_never_exceed_their_limits() -> None:
    pacer = Pacer(margin=0)
    sends: list[tuple[float, int]] = []
    pending = [-100, 1, 2, 3] * 25 + list(range(4, 200))
    for step in range(10_000):
        now = step * 0.01
        waiting = []
        for chat in pending:
            if pacer.acquire(chat, now) == 0:
                sends.append((now, chat))
            else:
                waiting.append(chat)
        pending = waiting
    assert len(sends) == 296, "everything is sent within 100 s, the group in two windows"
    for t, _ in sends:
        assert sum(1 for u, _ in sends if t <= u < t + 1.0) <= 30
    for chat in (1, 2, 3):
        times = [t for t, c in sends if c == chat]
        assert all(b - a >= 1.0 - 1e-9 for a, b in itertools.pairwise(times))
    group = [t for t, c in sends if c == -100]
    assert all(b - a >= 60.0 - 1e-9 for a, b in zip(group, group[20:], strict=False))

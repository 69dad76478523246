from __future__ import annotations

from datetime import timedelta

import pytest

from bot.pacing import Limit, Pacer, delivery_delay


def test_delivery_backoff() -> None:
    assert delivery_delay(1) == timedelta(seconds=5)
    assert delivery_delay(2) == timedelta(seconds=10)
    assert delivery_delay(30) == timedelta(hours=1)
    assert delivery_delay(1, retry_after=17) == timedelta(seconds=17)


def test_pacer_private_chat_one_per_second() -> None:
    pacer = Pacer()
    assert pacer.wait(5, 0.0) == 0
    pacer.record(5, 0.0)
    assert pacer.wait(5, 0.5) == pytest.approx(0.5)
    assert pacer.wait(6, 0.5) == 0
    assert pacer.wait(5, 1.0) == 0


def test_pacer_group_twenty_per_minute_and_global_thirty_per_second() -> None:
    pacer = Pacer()
    for i in range(20):
        assert pacer.wait(-100, i * 0.1) == 0
        pacer.record(-100, i * 0.1)
    assert pacer.wait(-100, 2.0) == pytest.approx(58.0)
    overall = Pacer(overall=Limit(3, 1.0))
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

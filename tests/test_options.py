"""Parsing what subscribers type, digest times and flood control: plain values, fixed now."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.telegram.options import (
    Bucket,
    FloodLimit,
    OptionError,
    Verdict,
    admit,
    digest_times,
    parse_count,
    parse_digest,
    parse_mute,
    release_cutoff,
    wait_seconds,
)

HK = ZoneInfo("Asia/Hong_Kong")
NOW = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)  # 10:00 in Hong Kong


def test_parse_count() -> None:
    assert parse_count([]) == 5
    assert parse_count(["12"]) == 12
    assert parse_count(["500"]) == 20
    for bad in (["0"], ["-1"], ["x"], ["1", "2"]):
        with pytest.raises(OptionError) as e:
            parse_count(bad)
        assert e.value.key == "recent.usage" and e.value.values == {"max": 20}


@pytest.mark.parametrize(
    ("args", "length"),
    [(["30m"], 30 * 60), (["2h"], 7200), (["1", "h"], 3600), (["1h30m"], 5400), (["1D"], 86400)],
)
def test_parse_mute(args: list[str], length: int) -> None:
    assert parse_mute(args) == timedelta(seconds=length)


@pytest.mark.parametrize(
    ("args", "key"),
    [
        ([], "mute.usage"),
        (["30"], "mute.usage"),
        (["soon"], "mute.usage"),
        (["30s"], "mute.too_short"),
        (["31d"], "mute.too_long"),
    ],
)
def test_parse_mute_refuses(args: list[str], key: str) -> None:
    with pytest.raises(OptionError) as e:
        parse_mute(args)
    assert e.value.key == key


@pytest.mark.parametrize(
    ("args", "setting"),
    [
        (["off"], None),
        (["OFF"], None),
        (["hourly"], "hourly"),
        (["daily"], "daily 08:00"),
        (["daily", "8:30"], "daily 08:30"),
        (["Daily", "0715"], "daily 07:15"),
        (["daily", "23"], "daily 23:00"),
    ],
)
def test_parse_digest(args: list[str], setting: str | None) -> None:
    assert parse_digest(args) == setting


@pytest.mark.parametrize(
    "args", [[], ["weekly"], ["daily", "24:00"], ["daily", "8:60"], ["hourly", "5"], ["on"]]
)
def test_parse_digest_refuses(args: list[str]) -> None:
    with pytest.raises(OptionError) as e:
        parse_digest(args)
    assert e.value.key == "digest.usage"


def test_hourly_digests_fall_on_the_local_hour() -> None:
    at = NOW + timedelta(minutes=25)
    assert digest_times("hourly", HK, at) == (NOW, NOW + timedelta(hours=1))
    india = ZoneInfo("Asia/Kolkata")  # +05:30: the local hour starts at :30 UTC
    last, upcoming = digest_times("hourly", india, at)
    assert last == datetime(2026, 11, 28, 1, 30, tzinfo=UTC)
    assert upcoming == datetime(2026, 11, 28, 2, 30, tzinfo=UTC)


def test_daily_digests_fall_on_the_local_time() -> None:
    # 08:00 in Hong Kong is 00:00 UTC; now is 10:00 there: today's digest has gone.
    assert digest_times("daily 08:00", HK, NOW) == (
        datetime(2026, 11, 28, 0, 0, tzinfo=UTC),
        datetime(2026, 11, 29, 0, 0, tzinfo=UTC),
    )
    assert digest_times("daily 18:30", HK, NOW) == (
        datetime(2026, 11, 27, 10, 30, tzinfo=UTC),
        datetime(2026, 11, 28, 10, 30, tzinfo=UTC),
    )
    at_boundary = datetime(2026, 11, 28, 10, 30, tzinfo=UTC)
    assert digest_times("daily 18:30", HK, at_boundary)[0] == at_boundary


def test_daily_digest_follows_daylight_saving_time() -> None:
    london = ZoneInfo("Europe/London")
    before = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)  # clocks go forward on 29 March
    _, upcoming = digest_times("daily 08:00", london, before)
    assert upcoming == datetime(2026, 3, 29, 7, 0, tzinfo=UTC)  # 08:00 BST


def test_digest_times_refuse_an_unknown_setting() -> None:
    with pytest.raises(ValueError, match="not a digest setting"):
        digest_times("weekly", HK, NOW)


LIMIT = FloodLimit(burst=3, per=30.0)  # 3 at once, one more every 10 s


def test_flood_bucket_warns_once_then_drops_until_a_token_is_back() -> None:
    bucket = None
    verdicts = []
    for _ in range(6):
        bucket, verdict = admit(bucket, 100.0, LIMIT)
        verdicts.append(verdict)
    assert verdicts == [Verdict.OK] * 3 + [Verdict.WARN, Verdict.DROP, Verdict.DROP]
    assert bucket is not None and wait_seconds(bucket, LIMIT) == 10
    bucket, verdict = admit(bucket, 109.0, LIMIT)
    assert verdict is Verdict.DROP
    bucket, verdict = admit(bucket, 110.5, LIMIT)
    assert verdict is Verdict.OK and not bucket.warned, "refilled: a new warning is allowed"
    bucket, verdict = admit(bucket, 110.6, LIMIT)
    assert verdict is Verdict.WARN


def test_flood_bucket_refills_to_its_burst_only() -> None:
    bucket = Bucket(0.0, 0.0)
    assert not bucket.full(20.0, LIMIT) and bucket.full(30.0, LIMIT)
    bucket, _ = admit(bucket, 10_000.0, LIMIT)
    assert bucket.tokens == 2.0
    _, verdict = admit(Bucket(0.5, 50.0), 40.0, LIMIT)  # a clock going back adds nothing
    assert verdict is Verdict.WARN


def test_release_cutoff_says_which_held_rows_go_out_now() -> None:
    hour = timedelta(hours=1)
    assert release_cutoff(None, None, HK, NOW) is None, "one by one: no digest"
    assert release_cutoff(NOW + hour, "hourly", HK, NOW) is None, "a running mute holds all"
    assert release_cutoff(NOW - hour, None, HK, NOW) == NOW, "an ended mute releases all"
    assert release_cutoff(NOW, "daily 08:00", HK, NOW) == NOW, "/unmute: muted until now"
    at = NOW + timedelta(minutes=20)
    assert release_cutoff(None, "hourly", HK, at) == NOW
    assert release_cutoff(None, "daily 08:00", HK, at) == datetime(2026, 11, 28, 0, 0, tzinfo=UTC)
    assert release_cutoff(None, "weekly", HK, at) == NOW, "an unknown setting acts as hourly"

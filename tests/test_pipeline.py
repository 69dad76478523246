"""FeedRunner with real parts: httpx against the local feed server, a real SQLite store in
tmp_path, the real parser. The clock is fixed, so schedules are exact."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from feedserver import FeedServer, Item, rss

from bot.decide import MAX_HINT, NEVER
from bot.fetch import Fetcher
from bot.matcher import Matcher
from bot.model import Feed
from bot.parse import ParsedFeed, parse_feed
from bot.pipeline import FeedRunner, Policy
from bot.rulebook import build_rulebook
from bot.store import ChannelConfig, Store
from bot.views import feeds_table

NOW = datetime.now(UTC).replace(microsecond=0)
TEN_MIN = timedelta(minutes=10)
TOPIC = "topics:\n  - id: t\n    match:\n      any: [stablecoin]\n"
REAL_FEEDS = Path(__file__).resolve().parents[2] / "shared" / "data" / "feeds"


def _items(*titles: str) -> bytes:
    return rss(
        [
            Item(t, f"https://news.example/{i}", guid=f"g{i}", published=NOW - timedelta(hours=1))
            for i, t in enumerate(titles)
        ]
    )


@dataclass
class Counting:
    """The parse function, counting its calls."""

    calls: list[str] = field(default_factory=list)

    async def __call__(self, content: bytes, url: str, headers: Mapping[str, str]) -> ParsedFeed:
        self.calls.append(url)
        return parse_feed(content, url=url, headers=headers)


@dataclass
class Rig:
    server: FeedServer
    store: Store
    runner: FeedRunner
    parse: Counting
    disabled: list[tuple[str, str]]

    async def feed(self, path: str, body: bytes = b"", **kw: object) -> Feed:
        url = self.server.add(path, body, **kw) if body or kw else self.server.url(path)
        feed = Feed(url, path.strip("/"))
        await self.store.feeds.sync([*self.feeds, feed])
        self.feeds.append(feed)
        return feed

    feeds: list[Feed] = field(default_factory=list)


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    rulebook, problems = build_rulebook({"t.yaml": TOPIC}, ())
    assert rulebook is not None, problems
    matcher = Matcher.compile(rulebook)
    disabled: list[tuple[str, str]] = []

    async def on_disabled(feed: Feed, reason: str) -> None:
        disabled.append((feed.name, reason))

    async with FeedServer() as server:
        store = await Store.open(f"sqlite:///{tmp_path}/db.sqlite")
        await store.chats.sync_channels([ChannelConfig(-100, ("*",))])
        parse = Counting()
        async with Fetcher(timeout=2, max_bytes=1_000_000, user_agent="newsbot-test") as fetcher:
            runner = FeedRunner(
                fetcher=fetcher,
                parse=parse,
                store=store,
                matcher=lambda: matcher,
                policy=Policy(TEN_MIN, timedelta(hours=24), timedelta(days=7)),
                clock=lambda: NOW,
                on_disabled=on_disabled,
            )
            try:
                yield Rig(server, store, runner, parse, disabled)
            finally:
                await store.close()


async def test_unchanged_feeds_are_not_parsed(rig: Rig) -> None:
    feed = await rig.feed("/a.xml", _items("HK stablecoin rules"))
    first = await rig.runner.run(feed)
    assert (first.status, first.new_entries, first.queued) == ("ok", 1, 1)
    assert (await rig.runner.run(feed)).status == "not_modified"
    rig.server.routes["/a.xml"].etag = rig.server.routes["/a.xml"].last_modified = False
    assert (await rig.runner.run(feed)).status == "unchanged"  # same body, same hash
    assert rig.parse.calls == [feed.url]
    rig.server.set("/a.xml", _items("HK stablecoin rules", "More stablecoin news"))
    changed = await rig.runner.run(feed)
    assert (changed.status, changed.new_entries, len(rig.parse.calls)) == ("ok", 1, 2)


async def test_gone_disables_the_feed_for_good(rig: Rig) -> None:
    feed = await rig.feed("/gone.xml", b"bye", status=410)
    report = await rig.runner.run(feed)
    assert report.status == "error" and report.next_fetch == NEVER
    assert report.error and "HTTP 410" in report.error
    assert rig.disabled == [("gone.xml", report.error)]
    again = await rig.runner.run(feed)
    assert again.next_fetch == NEVER
    assert len(rig.server.requests_for("/gone.xml")) == 1, "a disabled feed is not fetched"

    await rig.store.feeds.sync(rig.feeds)  # feeds.yaml reloaded, same url: still disabled
    assert (await rig.store.feeds.next_fetches())[feed.url] == NEVER
    [health] = await rig.store.feeds.health()
    assert (health.status, health.disabled) == ("disabled", report.error)
    assert "disabled: " in feeds_table([health], now=NOW)

    rig.server.add("/gone.xml", _items("back"))
    assert await rig.store.feeds.enable(feed.url)
    assert (await rig.runner.run(feed)).status == "ok"
    assert not await rig.store.feeds.enable(feed.url), "only a disabled feed can be enabled"


async def test_permanent_redirect_is_followed_then_fetched_directly(rig: Rig) -> None:
    rig.server.add("/new.xml", _items("moved stablecoin story"))
    rig.server.add_redirect("/old.xml", "/new.xml", status=308)
    feed = await rig.feed("/old.xml")
    assert (await rig.runner.run(feed)).status == "ok"
    assert (await rig.runner.run(feed)).status == "not_modified"
    assert len(rig.server.requests_for("/old.xml")) == 1
    assert len(rig.server.requests_for("/new.xml")) == 2
    [health] = await rig.store.feeds.health()
    assert getattr(health, "redirect_url", None) == rig.server.url("/new.xml")
    assert f"moved permanently to {rig.server.url('/new.xml')}" in feeds_table([health], now=NOW)


async def test_temporary_redirect_is_not_remembered(rig: Rig) -> None:
    rig.server.add("/temp-target.xml", _items("x"))
    rig.server.add_redirect("/temp.xml", "/temp-target.xml", status=302)
    feed = await rig.feed("/temp.xml")
    await rig.runner.run(feed)
    await rig.runner.run(feed)
    assert len(rig.server.requests_for("/temp.xml")) == 2


async def test_errors_back_off_and_the_feed_recovers(rig: Rig) -> None:
    feed = await rig.feed("/flaky.xml", b"down", status=500)
    reports = [await rig.runner.run(feed) for _ in range(3)]
    assert [r.next_fetch for r in reports] == [NOW + k * TEN_MIN for k in (2, 4, 8)]
    [health] = await rig.store.feeds.health()
    assert (health.status, health.consecutive_errors) == ("error", 3)
    assert "HTTP 500" in feeds_table([health], now=NOW)
    rig.server.add("/flaky.xml", _items("up again"))
    healed = await rig.runner.run(feed)
    assert (healed.status, healed.next_fetch) == ("ok", NOW + TEN_MIN)
    [health] = await rig.store.feeds.health()
    assert (health.status, health.consecutive_errors, health.last_error) == ("ok", 0, None)


async def test_retry_after_is_honoured(rig: Rig) -> None:
    feed = await rig.feed("/busy.xml", b"", status=503, headers={"Retry-After": "7200"})
    assert (await rig.runner.run(feed)).next_fetch == NOW + timedelta(hours=2)
    rig.server.routes["/busy.xml"].headers["Retry-After"] = "9999999"
    assert (await rig.runner.run(feed)).next_fetch == NOW + timedelta(days=1)


async def test_ttl_is_honoured_even_on_304(rig: Rig) -> None:
    body = _items("x").replace(b"<description>test</description>", b"<ttl>120</ttl>")
    feed = await rig.feed("/ttl.xml", body)
    assert (await rig.runner.run(feed)).next_fetch == NOW + timedelta(hours=2)
    second = await rig.runner.run(feed)
    assert (second.status, second.next_fetch) == ("not_modified", NOW + timedelta(hours=2))


@pytest.mark.parametrize(
    ("headers", "delay"),
    [
        ({"Cache-Control": "public, max-age=3600"}, timedelta(hours=1)),
        ({"Cache-Control": "max-age=60"}, TEN_MIN),  # never sooner than the interval
        ({"Cache-Control": "max-age=99999999"}, MAX_HINT),  # never later than a day
        ({"Cache-Control": "no-cache, max-age=3600"}, TEN_MIN),
        ({"Expires": "Thu, 01 Jan 2099 00:00:00 GMT"}, MAX_HINT),
    ],
)
async def test_cache_headers_are_honoured_within_bounds(
    rig: Rig, headers: dict[str, str], delay: timedelta
) -> None:
    feed = await rig.feed("/cached.xml", _items("x"), headers=headers)
    assert (await rig.runner.run(feed)).next_fetch == NOW + delay
    assert (await rig.runner.run(feed)).next_fetch == NOW + delay  # the 304 carries them too


async def test_a_parse_warning_is_recorded_and_shown(rig: Rig) -> None:
    feed = await rig.feed("/bozo.xml", _items("ok").replace(b"</rss>", b"</rss"))
    assert (await rig.runner.run(feed)).warning
    [health] = await rig.store.feeds.health()
    assert getattr(health, "warning", None)
    assert "warning:" in feeds_table([health], now=NOW)


@pytest.mark.skipif(not REAL_FEEDS.is_dir(), reason="shared/data/feeds absent")
@pytest.mark.parametrize(
    "path", sorted(REAL_FEEDS.glob("*.xml")) if REAL_FEEDS.is_dir() else [], ids=lambda p: p.name
)
async def test_real_feeds_flow_into_stored_entries(rig: Rig, path: Path) -> None:
    body = path.read_bytes()  # noqa: ASYNC240 - a small local fixture
    feed = await rig.feed("/" + path.name, body, content_type="application/xml")
    report = await rig.runner.run(feed)
    expected = parse_feed(body, url=feed.url, headers={})
    assert report.status == "ok", report.error
    assert report.entries == len(expected.entries)
    [health] = await rig.store.feeds.health()
    assert health.entries == report.new_entries > 0 or not expected.entries


async def test_fetched_bodies_waiting_for_a_parser_are_bounded(rig: Rig) -> None:
    """Fetching outruns parsing: without a bound, a first poll of 1,000 feeds held up to 699
    fetched bodies waiting for a parser. A fetch is admitted only with room to hold its body."""
    feeds = [await rig.feed(f"/{n}.xml", _items(f"stablecoin news {n}")) for n in range(5)]
    release = asyncio.Event()

    async def slow_parse(content: bytes, url: str, headers: Mapping[str, str]) -> ParsedFeed:
        await release.wait()
        return parse_feed(content, url=url, headers=headers)

    runner = FeedRunner(
        fetcher=rig.runner._fetcher,
        parse=slow_parse,
        store=rig.store,
        matcher=rig.runner._matcher,
        policy=Policy(TEN_MIN, timedelta(hours=24), timedelta(days=7)),
        clock=lambda: NOW,
        max_changed=1,
        max_held=2,
    )
    cycles = asyncio.gather(*(runner.run(feed) for feed in feeds))
    for _ in range(100):
        if len(rig.server.requests) >= 2:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.2)
    assert len(rig.server.requests) == 2, "two bodies held, nothing more fetched"
    release.set()
    reports = await cycles
    assert [r.status for r in reports] == ["ok"] * 5
    assert len(rig.server.requests) == 5

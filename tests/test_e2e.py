"""End to end with real parts: real httpx against a local feed server, the real
python-telegram-bot against a fake Bot API, a real SQLite database, the real CLI."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import io
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fakebotapi import FakeBotApi
from feedserver import FeedServer, Item, rss

from bot.app import build
from bot.config import load_settings
from bot.errors import ConfigError

TOKEN = "123456789:AAFakeTokenForTestsOnly_abcdefghijkl"
CHANNEL = -1001234567890
REPO = Path(__file__).resolve().parents[1]

TOPICS = """\
topics:
  - id: gba-fintech
    title: GBA fintech
    default: true
    match:
      all:
        - any: [Hong Kong, 香港, Shenzhen, 深圳, Greater Bay Area]
        - any: [fintech, stablecoin, 穩定幣, e-CNY, 数字人民币]
      not:
        any: [football]
"""


def recent(hours: float = 1) -> datetime:
    return datetime.now(UTC) - timedelta(hours=hours)


def story(n: int, title: str, *, hours: float = 1) -> Item:
    return Item(
        title=title,
        link=f"https://news.example/{n}?utm_source=rss",
        guid=f"item-{n}",
        published=recent(hours),
        description=f"<p>{title}: details &amp; more.</p>",
    )


@dataclass
class Setup:
    dir: Path
    config: Path
    feeds: FeedServer


def write_setup(
    tmp_path: Path, feeds: FeedServer, *, api_url: str | None, interval: str = "10m"
) -> Setup:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "topics.yaml").write_text(TOPICS, encoding="utf-8")
    feed_list = "".join(
        f"  - url: {feeds.url(path)}\n    name: {name}\n"
        for path, name in (
            ("/a.xml", "Outlet A"),
            ("/b.xml", "Outlet B"),
            ("/broken.xml", "Broken"),
            ("/html.xml", "Not a feed"),
        )
    )
    (rules / "feeds.yaml").write_text(f"feeds:\n{feed_list}", encoding="utf-8")
    telegram = f'api_url = "{api_url}"\n' if api_url else ""
    config = tmp_path / "newsbot.toml"
    config.write_text(
        f"""
[telegram]
{telegram}
[[telegram.channels]]
chat_id = {CHANNEL}
topics = ["gba-fintech"]

[storage]
url = "sqlite:///{tmp_path}/state/newsbot.db"

[rules]
dir = "{rules}"

[polling]
timeout = "5s"
interval = "{interval}"
""",
        encoding="utf-8",
    )
    feeds.add(
        "/a.xml",
        rss(
            [
                story(1, "Hong Kong stablecoin rules take effect"),
                story(2, "Football: Hong Kong wins"),
            ]
        ),
    )
    feeds.add(
        "/b.xml",
        rss(
            [
                story(3, "Shenzhen expands e-CNY pilot"),
                story(4, "Shenzhen fintech news from last month", hours=24 * 30),
            ]
        ),
    )
    feeds.add("/broken.xml", b"oops", status=500)
    feeds.add("/html.xml", b"<html><body>Not a feed</body></html>", content_type="text/html")
    return Setup(tmp_path, config, feeds)


# -- in process ---------------------------------------------------------------------------


@pytest.fixture
async def servers() -> AsyncIterator[tuple[FeedServer, FakeBotApi]]:
    async with FeedServer() as feeds, FakeBotApi(TOKEN) as api:
        yield feeds, api


async def run_once(setup: Setup) -> None:
    settings = load_settings(setup.config, {"TELEGRAM_BOT_TOKEN": TOKEN})
    with ThreadPoolExecutor(2) as pool:
        app = await build(settings, parse_executor=pool)
        try:
            await app.run_once(timedelta(seconds=30), asyncio.Event())
        finally:
            await app.close()


async def test_feed_to_channel_once_then_only_new(
    tmp_path: Path, servers: tuple[FeedServer, FakeBotApi]
) -> None:
    feeds, api = servers
    setup = write_setup(tmp_path, feeds, api_url=api.api_url)
    await run_once(setup)
    titles = sorted(s.visible.splitlines()[0] for s in api.sent)
    assert titles == ["Hong Kong stablecoin rules take effect", "Shenzhen expands e-CNY pilot"]
    assert {s.chat_id for s in api.sent} == {CHANNEL}
    assert all(s.parse_mode == "HTML" for s in api.sent)
    assert '<a href="https://news.example/1?utm_source=rss">' in "".join(s.text for s in api.sent)

    await run_once(setup)
    assert len(api.sent) == 2, "a second run must send nothing"
    assert any(r.not_modified for r in feeds.requests_for("/a.xml")), "conditional GET used"

    feeds.set(
        "/a.xml",
        rss(
            [
                story(1, "Hong Kong stablecoin rules take effect"),
                story(5, "香港金管局發出首批穩定幣牌照"),
            ]
        ),
    )
    await run_once(setup)
    assert len(api.sent) == 3
    assert api.sent[-1].visible.startswith("香港金管局發出首批穩定幣牌照")


async def test_same_story_in_two_feeds_is_sent_once(
    tmp_path: Path, servers: tuple[FeedServer, FakeBotApi]
) -> None:
    feeds, api = servers
    setup = write_setup(tmp_path, feeds, api_url=api.api_url)
    item = story(1, "Hong Kong stablecoin rules take effect")
    feeds.set("/a.xml", rss([item]))
    feeds.set(
        "/b.xml",
        rss(
            [
                Item(
                    title=item.title + "!",
                    link="https://other.example/x",
                    guid="other-1",
                    published=recent(),
                )
            ]
        ),
    )
    await run_once(setup)
    assert len(api.sent) == 1


async def test_subscriber_gets_alerts_through_chat_commands(
    tmp_path: Path, servers: tuple[FeedServer, FakeBotApi]
) -> None:
    feeds, api = servers
    setup = write_setup(tmp_path, feeds, api_url=api.api_url, interval="1s")
    settings = load_settings(setup.config, {"TELEGRAM_BOT_TOKEN": TOKEN})
    stop = asyncio.Event()
    with ThreadPoolExecutor(2) as pool:
        app = await build(settings, parse_executor=pool)
        serving = asyncio.create_task(app.serve(stop))
        try:
            # The first poll's stories are queued (and sent to the channel) before anyone
            # subscribes: they are the backlog a new subscriber must not get.
            await api.wait_for(lambda: sum(s.chat_id == CHANNEL for s in api.sent) == 2, timeout=30)
            api.push_message(4242, "/start", user_id=4242)
            await api.wait_for(lambda: any(s.chat_id == 4242 for s in api.sent), timeout=30)
            feeds.set(
                "/b.xml",
                rss(
                    [
                        story(3, "Shenzhen expands e-CNY pilot"),
                        story(6, "Shenzhen opens cross-border fintech sandbox"),
                    ]
                ),
            )
            await api.wait_for(
                lambda: any(s.chat_id == 4242 and "sandbox" in s.visible for s in api.sent),
                timeout=30,
            )
        finally:
            stop.set()
            await asyncio.wait_for(serving, 30)
            await app.close()
    to_user = [s.visible for s in api.sent if s.chat_id == 4242]
    assert to_user[0].startswith("Welcome")
    assert sum("sandbox" in text for text in to_user) == 1
    assert not any("Shenzhen expands e-CNY pilot" in text for text in to_user), (
        "a new subscriber gets new stories, not the backlog"
    )
    assert api.commands, "the command menu was registered"


async def test_console_mode_prints_and_leaves_real_subscribers_queued(
    tmp_path: Path, servers: tuple[FeedServer, FakeBotApi]
) -> None:
    feeds, _ = servers
    setup = write_setup(tmp_path, feeds, api_url=None)
    settings = load_settings(setup.config, {})
    console = io.StringIO()
    with ThreadPoolExecutor(2) as pool:
        app = await build(settings, parse_executor=pool, console=console)
        try:
            await app.store.chats.subscribe(4242, ["gba-fintech"])
            await app.run_once(timedelta(seconds=5), asyncio.Event())
            counts = await app.store.outbox.counts()
        finally:
            await app.close()
    assert console.getvalue().count("--- alert") == 2
    assert "to chat 0" in console.getvalue() and "4242" not in console.getvalue()
    assert counts == {"sent": 2, "pending": 2}, "the subscriber's alerts wait for a token"


async def test_a_channel_naming_an_unknown_topic_stops_start_up(
    tmp_path: Path, servers: tuple[FeedServer, FakeBotApi]
) -> None:
    feeds, api = servers
    setup = write_setup(tmp_path, feeds, api_url=api.api_url)
    text = setup.config.read_text("utf-8").replace('"gba-fintech"]', '"gba_fintech"]')
    setup.config.write_text(text, "utf-8")
    settings = load_settings(setup.config, {"TELEGRAM_BOT_TOKEN": TOKEN})
    with pytest.raises(ConfigError, match="gba_fintech") as caught:
        await build(settings)
    assert caught.value.key == "telegram.channels.topics"


# -- the command line, as operators run it ------------------------------------------------


def newsbot(*args: str, env: dict[str, str] | None = None, timeout: float = 120):
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "NEWSBOT_"))}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
        cwd=REPO,
        check=False,
    )


@pytest.fixture
def thread_servers() -> Iterator[tuple[FeedServer, FakeBotApi]]:
    with FeedServer() as feeds, FakeBotApi(TOKEN) as api:
        yield feeds, api


def test_cli_run_once_sends_then_nothing_and_keeps_the_token_secret(
    tmp_path: Path, thread_servers: tuple[FeedServer, FakeBotApi]
) -> None:
    feeds, api = thread_servers
    setup = write_setup(tmp_path, feeds, api_url=api.api_url)
    env = {"TELEGRAM_BOT_TOKEN": TOKEN}
    first = newsbot("--config", str(setup.config), "--log-level", "DEBUG", "run", "--once", env=env)
    assert first.returncode == 0, first.stderr
    assert len(api.sent) == 2
    assert TOKEN not in first.stderr + first.stdout
    assert "Broken" in first.stderr  # the failing feed is reported...
    second = newsbot("--config", str(setup.config), "run", "--once", env=env)
    assert second.returncode == 0, second.stderr
    assert len(api.sent) == 2  # ...and nothing is sent twice
    health = newsbot("--config", str(setup.config), "feeds")
    assert health.returncode == 0
    assert "Outlet A" in health.stdout and "HTTP 500" in health.stdout


def test_cli_console_mode_without_token(tmp_path: Path) -> None:
    with FeedServer() as feeds:
        setup = write_setup(tmp_path, feeds, api_url=None)
        result = newsbot("--config", str(setup.config), "run", "--once")
    assert result.returncode == 0, result.stderr
    assert "no Telegram token" in result.stderr
    assert result.stdout.count("Hong Kong stablecoin rules take effect\n") == 1
    assert "to chat 0" in result.stdout and str(CHANNEL) not in result.stdout
    assert "https://news.example/1?utm_source=rss" in result.stdout


def alerts_sent(log: str) -> int:
    return sum(int(n) for n in re.findall(r"sent (\d+) alerts", log))


def test_cli_sigterm_stops_cleanly(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "NEWSBOT_"))}
    command = [sys.executable, "-m", "bot", "--config", "CONFIG", "run"]
    lines: queue.Queue[str] = queue.Queue()
    with FeedServer() as feeds:
        setup = write_setup(tmp_path, feeds, api_url=None)
        command[command.index("CONFIG")] = str(setup.config)
        with subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, env=env
        ) as proc:
            assert proc.stderr is not None and proc.stdout is not None
            stderr = proc.stderr
            reader = threading.Thread(target=lambda: [lines.put(line) for line in stderr])
            reader.start()
            try:
                seen = ""
                deadline = time.monotonic() + 60
                while alerts_sent(seen) < 2 and time.monotonic() < deadline:
                    with contextlib.suppress(queue.Empty):
                        seen += lines.get(timeout=1)
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=60)
                out = proc.stdout.read()
            finally:
                if proc.poll() is None:
                    proc.kill()
                reader.join(10)
    err = seen + "".join(lines.queue)
    assert alerts_sent(err) == 2
    assert proc.returncode == 0, err
    assert "stopping" in err
    assert "Shenzhen expands e-CNY pilot" in out


def test_cli_rules_check(tmp_path: Path) -> None:
    ok = newsbot("rules", "check")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "feeds.yaml").write_text("feeds:\n  - url: https://example.org/rss\n", "utf-8")
    (rules / "bad.yaml").write_text(
        "topics:\n  - id: x\n    title: X\n    match:\n      any: []\n", encoding="utf-8"
    )
    config = tmp_path / "c.toml"
    config.write_text(f'[rules]\ndir = "{rules}"\n', encoding="utf-8")
    bad = newsbot("--config", str(config), "rules", "check")
    assert bad.returncode == 1
    assert f"{rules / 'bad.yaml'}:5:" in bad.stdout


def test_cli_bad_config_names_key_and_file(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[polling]\ninterval = "often"\n', encoding="utf-8")
    result = newsbot("--config", str(config), "run", "--once")
    assert result.returncode == 2
    assert "polling.interval" in result.stderr and str(config) in result.stderr


async def test_start_sets_start_up_objects_aside_from_full_collections(
    tmp_path: Path, servers: tuple[FeedServer, FakeBotApi]
) -> None:
    """A full collection right after start-up scanned ~100,000 objects: a 60 ms stall of the
    event loop in the middle of the first poll (bench/poll.py). ``start`` freezes them."""
    feeds, _ = servers
    settings = load_settings(write_setup(tmp_path, feeds, api_url=None).config, {})
    gc.unfreeze()
    with ThreadPoolExecutor(1) as pool:
        app = await build(settings, parse_executor=pool, console=io.StringIO())
        try:
            await app.start()
            assert gc.get_freeze_count() > 10_000
        finally:
            gc.unfreeze()
            await app.close()


async def test_a_gone_feed_enabled_again_is_fetched_by_the_running_service(
    tmp_path: Path, servers: tuple[FeedServer, FakeBotApi]
) -> None:
    feeds, _ = servers
    settings = load_settings(write_setup(tmp_path, feeds, api_url=None).config, {})
    body = rss([story(1, "Hong Kong stablecoin rules take effect")])
    feeds.add("/a.xml", b"gone", status=410)
    stop = asyncio.Event()

    async def health() -> dict[str, Any]:
        return {h.name: h for h in await app.store.feeds.health()}

    async def until(check: Callable[[dict[str, Any]], bool]) -> None:
        for _ in range(500):
            if check(await health()):
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"never happened: {await health()}")

    with ThreadPoolExecutor(2) as pool:
        app = await build(settings, parse_executor=pool, console=io.StringIO())
        serving = asyncio.ensure_future(app.serve(stop))
        try:
            await until(lambda h: bool(h["Outlet A"].disabled))
            assert await app.revive_feeds() == [], "still disabled: nothing to revive"
            feeds.add("/a.xml", body)
            assert await app.store.feeds.enable(feeds.url("/a.xml"))
            await app.watch_rules()  # the periodic job: the scheduler learns of it
            await until(lambda h: h["Outlet A"].status == "ok" and h["Outlet A"].entries == 1)
        finally:
            stop.set()
            await serving
            await app.close()

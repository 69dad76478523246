"""Hostile feeds through the real pipeline: each fault is recorded on its feed, and the other
feeds' alerts still reach Telegram (real httpx, real python-telegram-bot against a fake Bot
API, a real SQLite database)."""

from __future__ import annotations

import asyncio
import random
import sqlite3
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fakebotapi import FakeBotApi
from feedserver import FeedServer, Item, rss

from bot.app import build
from bot.config import load_settings
from bot.model import FeedHealth

TOKEN = "123456789:AAFakeTokenForFaultTestsOnly_abcdefgh"
CHANNEL = -1001234567890
SECRET = "TOP-SECRET-TARGET-TEXT"
GBK_TITLE = "香港金融科技周：金管局推出新一批監管沙盒項目，深圳企業參與"
TOPICS = """\
topics:
  - id: gba-fintech
    title: GBA fintech
    match:
      all:
        - any: [Hong Kong, 香港, Shenzhen]
        - any: [fintech, stablecoin, e-CNY]
"""


def _recent() -> datetime:
    return datetime.now(UTC) - timedelta(hours=1)


def _good(n: int, title: str) -> bytes:
    item = Item(title, f"https://news.example/{n}", guid=f"good-{n}", published=_recent())
    return rss([item], title=f"Good {n}")


def _doc(title: str, doctype: str = "", description: str = "") -> bytes:
    return (
        f'<?xml version="1.0"?>\n{doctype}\n<rss version="2.0"><channel><title>t</title>'
        f"<item><title>{title}</title><description>{description}</description>"
        "<link>https://news.example/x</link><guid>x</guid></item></channel></rss>"
    ).encode()


def _laughs() -> bytes:
    levels = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{n} "{f"&lol{n - 1};" * 10}">' for n in range(1, 10)
    ]
    return _doc("Laughs &lol9;", "<!DOCTYPE rss [\n" + "\n".join(levels) + "\n]>")


# path -> the text the feed's recorded error (or warning) must contain
FAULTS = {
    "/drip.xml": "deadline",
    "/hang.xml": "timeout",
    "/500.xml": "HTTP 500",
    "/404.xml": "HTTP 404",
    "/410.xml": "HTTP 410",
    "/loop1.xml": "redirect loop",
    "/huge.xml": "exceeds",
    "/huge-declared.xml": "Content-Length",
    "/bomb.xml": "exceeds",
    "/html.xml": "HTML page",
    "/empty.xml": "empty document",
    "/random.xml": "no feed entries",
}
# Documents that still give entries: the recorded outcome is a warning, and the feed is ok.
WARNINGS = {
    "/laughs.xml": "undefined entity",
    "/xxe.xml": "undefined entity",
    "/wrong-charset.xml": "declared as utf-8 but the body is not",
}


def _serve_faults(server: FeedServer, secret_uri: str) -> None:
    server.add_drip("/drip.xml", _good(90, "drip"), interval=0.3)
    server.add_hang("/hang.xml")
    server.add("/500.xml", b"oops", status=500)
    server.add("/404.xml", b"not here", status=404)
    server.add("/410.xml", b"gone", status=410)
    server.add_redirect("/loop1.xml", "/loop2.xml")
    server.add_redirect("/loop2.xml", "/loop1.xml")
    server.add_huge("/huge.xml", 200_000_000, declare_length=False)
    server.add_huge("/huge-declared.xml", 200_000_000)
    server.add_gzip_bomb("/bomb.xml", 50_000_000)
    server.add(
        "/html.xml", b"<!doctype html><html><body>Moved</body></html>", content_type="text/html"
    )
    server.add("/empty.xml", b"")
    server.add("/random.xml", random.Random(7).randbytes(8192), content_type="application/xml")
    server.add("/laughs.xml", _laughs())
    xxe = f'<!DOCTYPE rss [ <!ENTITY xxe SYSTEM "{secret_uri}"> ]>'
    server.add("/xxe.xml", _doc("Leak &xxe;", xxe, "&xxe;"))
    gbk = _doc(GBK_TITLE).decode().encode("gb18030")
    server.add("/wrong-charset.xml", gbk, content_type="application/rss+xml; charset=utf-8")
    server.add("/good1.xml", _good(1, "Hong Kong stablecoin rules take effect"))
    server.add("/good2.xml", _good(2, "Shenzhen expands e-CNY pilot"))


def _write_config(tmp_path: Path, server: FeedServer, api_url: str) -> Path:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "topics.yaml").write_text(TOPICS, encoding="utf-8")
    paths = ["/good1.xml", *FAULTS, *WARNINGS, "/good2.xml"]
    feeds = "".join(f"  - url: {server.url(p)}\n    name: {p.strip('/')}\n" for p in paths)
    (rules / "feeds.yaml").write_text(f"feeds:\n{feeds}", encoding="utf-8")
    config = tmp_path / "newsbot.toml"
    config.write_text(
        f'[telegram]\napi_url = "{api_url}"\n[[telegram.channels]]\nchat_id = {CHANNEL}\n'
        f'topics = ["gba-fintech"]\n[storage]\nurl = "sqlite:///{tmp_path}/newsbot.db"\n'
        f'[rules]\ndir = "{rules}"\n[polling]\ntimeout = "1s"\nmax_bytes = "1MB"\n',
        encoding="utf-8",
    )
    return config


@pytest.fixture
async def servers() -> AsyncIterator[tuple[FeedServer, FakeBotApi]]:
    async with FeedServer() as feeds, FakeBotApi(TOKEN) as api:
        yield feeds, api


async def _run_once(config: Path) -> dict[str, FeedHealth]:
    settings = load_settings(config, {"TELEGRAM_BOT_TOKEN": TOKEN})
    with ThreadPoolExecutor(2) as pool:
        app = await build(settings, parse_executor=pool)
        try:
            await app.run_once(timedelta(seconds=30), asyncio.Event())
            return {h.name: h for h in await app.store.feeds.health()}
        finally:
            await app.close()


async def test_every_fault_is_recorded_and_other_feeds_still_alert(
    tmp_path: Path, servers: tuple[FeedServer, FakeBotApi]
) -> None:
    server, api = servers
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET, encoding="utf-8")
    _serve_faults(server, secret.as_uri())
    health = await _run_once(_write_config(tmp_path, server, api.api_url))

    titles = sorted(s.visible.splitlines()[0] for s in api.sent)
    assert titles == ["Hong Kong stablecoin rules take effect", "Shenzhen expands e-CNY pilot"]
    for path, expected in FAULTS.items():
        feed = health[path.strip("/")]
        assert feed.status in ("error", "disabled"), (path, feed)
        assert expected in (feed.last_error or ""), (path, feed.last_error)
        assert feed.consecutive_errors == (0 if feed.disabled else 1)
    assert health["410.xml"].disabled and "HTTP 410" in health["410.xml"].disabled
    for path, expected in WARNINGS.items():
        feed = health[path.strip("/")]
        assert (feed.status, feed.entries) == ("ok", 1), (path, feed)
        assert expected in (getattr(feed, "warning", None) or ""), (path, feed)
    assert health["good1.xml"].status == health["good2.xml"].status == "ok"

    with sqlite3.connect(tmp_path / "newsbot.db") as db:
        stored = repr(db.execute("SELECT * FROM entries").fetchall())
        stored += repr(db.execute("SELECT * FROM stories").fetchall())
    assert "Leak" in stored and "Laughs" in stored  # the documents were stored...
    assert SECRET not in stored  # ...without the external entity's target
    assert "lollol" not in stored  # ...and without expanding the laughs
    assert GBK_TITLE in stored  # a GBK body labelled UTF-8 is not mojibake

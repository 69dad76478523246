"""Hot reload on a running bot: a broken edit keeps the old rules and tells the admins with
FILE:LINE; a fixed edit is picked up; admin ``/reload`` answers.

Real parts throughout: ``app.serve`` with its scheduler (the rules watcher polls rules/ every
5 s), httpx against a local feed server, python-telegram-bot against a fake Bot API.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fakebotapi import FakeBotApi
from feedserver import FeedServer, Item, rss

from bot.app import RULES_SETTLE, App, Rules, build
from bot.config import load_settings

TOKEN = "123456789:AAFakeTokenForTestsOnly_abcdefghijkl"
CHANNEL = -1001234567890
ADMIN = 777
USER = 4242
WATCH = 30  # seconds to wait for the watcher (it runs every 5 s) or a poll

OLD_RULES = """\
topics:
  - id: gba-fintech
    title: GBA fintech
    match:
      all:
        - any: [Hong Kong, Shenzhen]
        - any: [stablecoin]
"""
BROKEN_RULES = """\
topics:
  - id: gba-fintech
    title: GBA fintech
    match:
      anyy: [Hong Kong, Shenzhen, e-CNY]
"""
NEW_RULES = """\
topics:
  - id: gba-fintech
    title: GBA fintech
    match:
      all:
        - any: [Hong Kong, Shenzhen]
        - any: [stablecoin, e-CNY]
  - id: e-cny
    title: e-CNY
    match: e-CNY
"""


def item(n: int, title: str) -> Item:
    return Item(
        title=title,
        link=f"https://news.example/{n}",
        guid=f"item-{n}",
        published=datetime.now(UTC) - timedelta(minutes=10),
    )


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[tuple[App, FeedServer, FakeBotApi, Path]]:
    async with FeedServer() as feeds, FakeBotApi(TOKEN) as api:
        rules = tmp_path / "rules"
        rules.mkdir()
        topics = rules / "topics.yaml"
        topics.write_text(OLD_RULES, encoding="utf-8")
        (rules / "feeds.yaml").write_text(
            f"feeds:\n  - url: {feeds.url('/a.xml')}\n    name: Outlet A\n", encoding="utf-8"
        )
        feeds.add("/a.xml", rss([item(1, "Hong Kong stablecoin rules take effect")]))
        config = tmp_path / "newsbot.toml"
        config.write_text(
            f'[telegram]\napi_url = "{api.api_url}"\nadmins = [{ADMIN}]\n'
            f'[[telegram.channels]]\nchat_id = {CHANNEL}\ntopics = ["*"]\n'
            f'[storage]\nurl = "sqlite:///{tmp_path}/newsbot.db"\n'
            f'[rules]\ndir = "{rules}"\n[polling]\ninterval = "1s"\ntimeout = "5s"\n',
            encoding="utf-8",
        )
        settings = load_settings(config, {"TELEGRAM_BOT_TOKEN": TOKEN})
        stop = asyncio.Event()
        with ThreadPoolExecutor(2) as pool:
            app = await build(settings, parse_executor=pool)
            serving = asyncio.create_task(app.serve(stop))
            try:
                yield app, feeds, api, topics
            finally:
                stop.set()
                await asyncio.wait_for(serving, 30)
                await app.close()


def edit(path: Path, text: str) -> None:
    """Replace the file in one step, as careful editors do: the watcher never sees half."""
    temporary = path.with_suffix(".tmp")
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(path)


def to_chat(api: FakeBotApi, chat_id: int) -> list[str]:
    return [s.visible for s in api.sent if s.chat_id == chat_id]


def channel_got(api: FakeBotApi, title: str) -> bool:
    return any(text.startswith(title) for text in to_chat(api, CHANNEL))


async def test_bot_survives_a_broken_edit_and_picks_up_the_fix(
    running: tuple[App, FeedServer, FakeBotApi, Path],
) -> None:
    app, feeds, api, topics = running
    await api.wait_for(lambda: channel_got(api, "Hong Kong stablecoin"), WATCH, "first alert")

    # A broken edit: the admins hear FILE:LINE, the old rules stay in force.
    edit(topics, BROKEN_RULES)
    problem = f"{topics}:5: unknown key 'anyy' (expected any, all, not)"
    await api.wait_for(lambda: any(problem in t for t in to_chat(api, ADMIN)), WATCH, "notice")
    [notice] = to_chat(api, ADMIN)
    assert notice.startswith("rules not reloaded, the old ones stay:")
    assert not any(s.chat_id == USER for s in api.sent)
    feeds.set(
        "/a.xml",
        rss([item(1, "Hong Kong stablecoin rules take effect"), item(2, "Shenzhen stablecoin")]),
    )
    await api.wait_for(lambda: channel_got(api, "Shenzhen stablecoin"), WATCH, "old-rule alert")
    assert app.rules.rulebook.topic_ids == ("gba-fintech",)

    # The fix is picked up by the watcher, and the new topics alert.
    edit(topics, NEW_RULES)
    await api.wait_for(lambda: app.rules.rulebook.topic("e-cny") is not None, WATCH, "reload")
    assert app.rules.last_error is None
    feeds.set("/a.xml", rss([item(2, "Shenzhen stablecoin"), item(3, "Shenzhen e-CNY pilot")]))
    await api.wait_for(lambda: channel_got(api, "Shenzhen e-CNY pilot"), WATCH, "new-rule alert")
    assert len(to_chat(api, ADMIN)) == 1, "a good reload sends the admins nothing"

    # /reload: admins get the result, others a refusal.
    api.push_message(ADMIN, "/reload", user_id=ADMIN)
    await api.wait_for(lambda: len(to_chat(api, ADMIN)) == 2, WATCH, "/reload answer")
    assert to_chat(api, ADMIN)[-1] == "rules reloaded: 2 topics, 1 feeds"
    api.push_message(USER, "/reload", user_id=USER)
    await api.wait_for(lambda: bool(to_chat(api, USER)), WATCH, "/reload refusal")
    assert to_chat(api, USER) == ["Sorry, /reload is only for this bot's operators."]


async def test_admin_reload_of_a_broken_edit_answers_with_the_problems(
    running: tuple[App, FeedServer, FakeBotApi, Path],
) -> None:
    app, _, api, topics = running
    edit(topics, BROKEN_RULES)
    api.push_message(ADMIN, "/reload", user_id=ADMIN)
    problem = f"{topics}:5: unknown key 'anyy' (expected any, all, not)"
    await api.wait_for(lambda: any(problem in t for t in to_chat(api, ADMIN)), WATCH, "answer")
    assert app.rules.rulebook.topic_ids == ("gba-fintech",)
    assert app.rules.last_error == problem


async def test_a_file_still_being_written_is_not_loaded_until_it_settles(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    topics = rules / "topics.yaml"
    topics.write_text(OLD_RULES, encoding="utf-8")
    (rules / "feeds.yaml").write_text("feeds:\n  - url: http://127.0.0.1/a.xml\n", "utf-8")
    config = tmp_path / "newsbot.toml"
    config.write_text(f'[rules]\ndir = "{rules}"\n', encoding="utf-8")
    loaded = Rules(load_settings(config, {}))
    assert not loaded.changed()

    topics.write_text(NEW_RULES[:40], encoding="utf-8")  # an editor's first half
    written = topics.stat().st_mtime
    assert not loaded.changed(now=written + RULES_SETTLE / 2), "still being written"
    topics.write_text(NEW_RULES, encoding="utf-8")
    written = topics.stat().st_mtime
    assert loaded.changed(now=written + RULES_SETTLE + 0.01)
    assert await loaded.reload()
    assert loaded.rulebook.topic_ids == ("gba-fintech", "e-cny")
    assert not loaded.changed(now=written + 60)

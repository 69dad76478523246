"""Chat commands through a real polling python-telegram-bot Application and the fake Bot API.

Every test pushes updates into the fake server's getUpdates queue and waits for the bot's
replies; nothing calls a handler directly. Subscriptions live in ``MemoryStore`` below, a
plain implementation of ``SubscriptionStore``; preferences in the real ``PrefStore`` over
SQLite in tmp_path; /recent runs entirely on the real store. Clocks are fixed and passed in.
The fake server refuses HTML Telegram would refuse, so every reply checked here is valid.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import builders
import pytest
from fakebotapi import FakeBotApi, Sent

from bot.delivery import Deliverer
from bot.model import Candidate, Feed, Keyword, Topic
from bot.store import Store
from bot.store.engine import Database
from bot.store.prefs import ChatPrefs, PrefStore
from bot.telegram.commands import CommandDeps, register, set_menus
from bot.telegram.options import FloodLimit
from bot.telegram.transport import (
    TelegramTransport,
    build_application,
    start_polling,
    stop_polling,
)

TOKEN = "777000:AAHcommandscommandscommands"
USER = 1001
ADMIN = 9000
GROUP = -1005550001
NOW = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)  # 10:00 in Hong Kong

TOPICS = (
    Topic("gba-fintech", "Greater Bay Area fintech", Keyword("GBA"), "Fintech in the GBA", True),
    Topic(
        "hk-regulators",
        "HK regulators",
        Keyword("HKMA"),
        "HKMA & SFC <circulars>",
        titles=(("zh-hant", "香港監管機構"),),
        descriptions=(("zh-hans", "金管局与证监会<通告>"),),
    ),
    Topic("banks", "Banks & <Fintech>", Keyword("bank")),
)


@dataclass
class Catalog:
    topics: tuple[Topic, ...] = TOPICS

    def topic(self, topic_id: str) -> Topic | None:
        return next((t for t in self.topics if t.id == topic_id), None)


@dataclass
class MemoryStore:
    """SubscriptionStore in memory; ``fail_for`` makes one chat's reads raise."""

    chats: dict[int, dict[str, str | None]] = field(default_factory=dict)
    subs: dict[int, list[str]] = field(default_factory=dict)
    fail_for: int | None = None

    async def upsert_chat(
        self, chat_id: int, *, kind: str, language: str | None = None, title: str | None = None
    ) -> None:
        self.chats[chat_id] = {"kind": kind, "language": language, "title": title}

    async def subscribe(self, chat_id: int, topic_ids: Sequence[str]) -> list[str]:
        current = self.subs.setdefault(chat_id, [])
        added = [t for t in dict.fromkeys(topic_ids) if t not in current]
        current += added
        return added

    async def unsubscribe(self, chat_id: int, topic_ids: Sequence[str]) -> list[str]:
        current = self.subs.setdefault(chat_id, [])
        removed = [t for t in dict.fromkeys(topic_ids) if t in current]
        self.subs[chat_id] = [t for t in current if t not in removed]
        return removed

    async def unsubscribe_all(self, chat_id: int) -> int:
        return len(self.subs.pop(chat_id, []))

    async def subscriptions(self, chat_id: int) -> list[str]:
        if chat_id == self.fail_for:
            raise RuntimeError(f"database is down; token {TOKEN}")
        return list(self.subs.get(chat_id, []))


@dataclass
class Bot:
    api: FakeBotApi
    store: MemoryStore
    operator_calls: list[str]
    prefs: PrefStore
    application: Any

    async def say(self, text: str, chat_id: int = USER, **kw: Any) -> Sent:
        """Send ``text`` as a user and return the bot's next reply."""
        return await say(self.api, text, chat_id, **kw)

    async def press(
        self, reply: Sent, data: str, user_id: int = USER, *, redraw: bool = True
    ) -> dict[str, object]:
        """Press the button ``data`` under ``reply``; the callback answer.

        With ``redraw``, also wait for the bot's attempt to redraw the keyboard.
        """
        answers, edits = len(self.api.callback_answers), len(self.api.edits)
        self.api.push_callback(int(reply.chat_id), reply.message_id, data, user_id=user_id)
        await self.api.wait_for(lambda: len(self.api.callback_answers) > answers, what="answer")
        if redraw:
            await self.api.wait_for(lambda: len(self.api.edits) > edits, what="edit")
        return self.api.callback_answers[answers]


async def say(api: FakeBotApi, text: str, chat_id: int = USER, **kw: Any) -> Sent:
    """Send ``text`` as a user and return the bot's next reply."""
    before = len(api.sent)
    kw.setdefault("user_id", chat_id if chat_id > 0 else USER)
    api.push_message(chat_id, text, **kw)
    return (await api.wait_for_sent(before + 1))[before]


def buttons(markup: dict[str, object] | None) -> list[str]:
    rows = (markup or {}).get("inline_keyboard", [])
    return [b["callback_data"] for row in rows for b in row]  # type: ignore[attr-defined]


@dataclass
class Clock:
    """The fixed clocks passed to the handlers: ``now`` (UTC) and ``mono`` (seconds)."""

    now: datetime = NOW
    mono: float = 1000.0


@asynccontextmanager
async def running(deps: CommandDeps) -> AsyncIterator[tuple[FakeBotApi, Any]]:
    """A fake Bot API and a real polling Application with the handlers registered."""
    async with FakeBotApi(TOKEN) as api:
        application = build_application(TOKEN, api.api_url)
        register(application, deps)
        await start_polling(application, poll_timeout=1)
        try:
            yield api, application
        finally:
            await stop_polling(application)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Store]:
    store = await Store.open(f"sqlite:///{tmp_path}/db")
    yield store
    await store.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def bot(db: Store, clock: Clock) -> AsyncIterator[Bot]:
    calls: list[str] = []

    async def status() -> str:
        calls.append("status")
        return "uptime 5m\nqueue: 3 pending <ok>"

    store = MemoryStore()
    prefs = PrefStore(Database(db.engine))
    deps = CommandDeps(
        store,
        Catalog,
        frozenset({ADMIN}),
        status=status,
        prefs=prefs,
        clock=lambda: clock.now,
        monotonic=lambda: clock.mono,  # fixed: flood control is tested on its own below
        flood=FloodLimit(burst=1000, per=1.0),
    )
    async with running(deps) as (api, application):
        yield Bot(api, store, calls, prefs, application)


async def test_start_subscribes_defaults_and_shows_buttons(bot: Bot) -> None:
    reply = await bot.say("/start")
    assert bot.store.subs[USER] == ["gba-fintech"]
    assert bot.store.chats[USER] == {"kind": "private", "language": "en", "title": "Tess"}
    assert "now follows Greater Bay Area fintech" in reply.visible
    assert "HKMA & SFC <circulars>" in reply.visible  # escaped in the HTML, shown as written
    assert "Banks & <Fintech> – banks" in reply.visible
    assert buttons(reply.reply_markup) == ["u:gba-fintech", "s:hk-regulators", "s:banks"]


async def test_start_keeps_existing_subscriptions(bot: Bot) -> None:
    await bot.say("/subscribe banks")
    reply = await bot.say("/start")
    assert bot.store.subs[USER] == ["banks"]
    assert "now follows" not in reply.visible
    assert buttons(reply.reply_markup) == ["s:gba-fintech", "s:hk-regulators", "u:banks"]


async def test_buttons_toggle_and_redraw_in_place(bot: Bot) -> None:
    reply = await bot.say("/topics")
    answer = await bot.press(reply, "s:hk-regulators")
    assert answer["text"] == "Following HK regulators"
    assert bot.store.subs[USER] == ["hk-regulators"]
    message = bot.api.message(USER, reply.message_id)
    assert message is not None
    assert buttons(message["reply_markup"]) == ["s:gba-fintech", "u:hk-regulators", "s:banks"]

    await bot.press(reply, "u:hk-regulators")
    assert bot.store.subs[USER] == []
    message = bot.api.message(USER, reply.message_id)
    assert message is not None
    assert buttons(message["reply_markup"]) == ["s:gba-fintech", "s:hk-regulators", "s:banks"]
    assert len(bot.api.sent) == 1  # edited in place, nothing new sent


async def test_pressing_a_stale_button_twice_is_harmless(bot: Bot) -> None:
    reply = await bot.say("/topics")
    await bot.press(reply, "s:banks")
    await bot.press(reply, "s:banks")  # "message is not modified" is not an error
    assert bot.store.subs[USER] == ["banks"]
    assert len(bot.api.sent) == 1


async def test_subscribe_and_unsubscribe_by_id(bot: Bot) -> None:
    reply = await bot.say("/subscribe HK-Regulators, #gba_fintech")
    assert bot.store.subs[USER] == ["hk-regulators", "gba-fintech"]
    assert "Now following HK regulators, Greater Bay Area fintech" in reply.visible
    reply = await bot.say("/subscribe banks gba-fintech")
    assert "Now following Banks & <Fintech>" in reply.visible
    assert "Already following Greater Bay Area fintech" in reply.visible
    reply = await bot.say("/unsubscribe hk-regulators")
    assert "Stopped following HK regulators" in reply.visible
    assert bot.store.subs[USER] == ["gba-fintech", "banks"]


async def test_unknown_topic_lists_the_valid_ids(bot: Bot) -> None:
    reply = await bot.say("/subscribe crypto <x> banks")
    assert "Unknown topic: crypto, <x>." in reply.visible
    assert "Topics: gba-fintech, hk-regulators, banks." in reply.visible
    assert bot.store.subs[USER] == ["banks"]


async def test_subscribe_without_ids_shows_usage(bot: Bot) -> None:
    reply = await bot.say("/subscribe")
    assert reply.visible.startswith("Usage: /subscribe ID")
    reply = await bot.say("/unsubscribe")
    assert reply.visible.startswith("Usage: /unsubscribe ID")
    assert USER not in bot.store.subs


async def test_stop_removes_everything(bot: Bot) -> None:
    await bot.say("/subscribe banks hk-regulators")
    reply = await bot.say("/stop")
    assert "2 subscriptions removed" in reply.visible
    assert bot.store.subs.get(USER, []) == []


async def test_help_lists_commands_and_operators_see_theirs(bot: Bot) -> None:
    reply = await bot.say("/help")
    assert "/subscribe" in reply.visible and "/status" not in reply.visible
    reply = await bot.say("/help", chat_id=ADMIN)
    assert "/status" in reply.visible


async def test_operator_commands_refuse_others(bot: Bot) -> None:
    reply = await bot.say("/status")
    assert "only for this bot's operators" in reply.visible
    assert bot.operator_calls == []
    reply = await bot.say("/status", chat_id=ADMIN)
    assert bot.operator_calls == ["status"]
    assert reply.visible == "uptime 5m\nqueue: 3 pending <ok>"
    reply = await bot.say("/reload", chat_id=ADMIN)
    assert "not available" in reply.visible


async def test_group_members_cannot_change_subscriptions(bot: Bot) -> None:
    bot.api.set_admins(GROUP, {ADMIN + 1})
    group: dict[str, Any] = {
        "chat_id": GROUP,
        "chat_type": "supergroup",
        "chat_title": "Fintech desk",
    }
    reply = await bot.say("/subscribe banks", user_id=USER, **group)
    assert "Only this group's administrators" in reply.visible
    reply = await bot.say("/start", user_id=USER, **group)
    assert GROUP not in bot.store.subs  # a member's /start does not subscribe the group
    answer = await bot.press(reply, "s:banks", user_id=USER, redraw=False)
    assert answer["show_alert"] is True
    assert GROUP not in bot.store.subs

    await bot.say("/subscribe banks", user_id=ADMIN + 1, **group)
    assert bot.store.subs[GROUP] == ["banks"]
    assert bot.store.chats[GROUP]["title"] == "Fintech desk"
    assert bot.store.chats[GROUP]["language"] is None


async def test_anonymous_group_admin_may_change(bot: Bot) -> None:
    group: dict[str, Any] = {"chat_id": GROUP, "chat_type": "supergroup", "sender_chat_id": GROUP}
    await bot.say("/subscribe banks", user_id=1087968824, **group)
    assert bot.store.subs[GROUP] == ["banks"]


async def test_unknown_commands_get_a_hint(bot: Bot) -> None:
    reply = await bot.say("/frobnicate now")
    assert reply.visible == "I don't know /frobnicate. /help lists what I can do."
    group: dict[str, Any] = {"chat_id": GROUP, "chat_type": "group"}
    bot.api.push_message(GROUP, "/other@some_other_bot", user_id=USER, chat_type="group")
    bot.api.push_message(GROUP, "/other", user_id=USER, chat_type="group")
    reply = await bot.say("/frobnicate@newsbot_test_bot", user_id=USER, **group)
    assert reply.visible.startswith("I don't know /frobnicate")
    await bot.say("/help", user_id=USER, **group)  # one more round trip before counting
    assert len(bot.api.sent) == 3  # /frobnicate twice, /help; other bots' commands: nothing
    assert not [s for s in bot.api.sent if "/other" in s.visible]


async def test_a_failing_handler_apologises_and_logs_without_token(
    bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="bot")
    bot.store.fail_for = USER
    reply = await bot.say("/topics")
    assert reply.visible == "Sorry, something went wrong. Please try again."
    failures = [r for r in caplog.records if "chat command failed" in r.getMessage()]
    assert failures and "database is down" in failures[0].getMessage()
    assert not [r for r in caplog.records if TOKEN in r.getMessage()]
    bot.store.fail_for = None
    reply = await bot.say("/topics")  # the bot keeps serving
    assert reply.visible.startswith("Topics")


async def test_being_added_to_a_group_remembers_the_chat(bot: Bot) -> None:
    def member(status: str) -> dict[str, object]:
        return {"status": status, "user": bot.api.bot_user}

    bot.api.push_update(
        {
            "my_chat_member": {
                "chat": {"id": GROUP, "type": "supergroup", "title": "Fintech desk"},
                "from": {"id": USER, "is_bot": False, "first_name": "Tess"},
                "date": 1_780_000_000,
                "old_chat_member": member("left"),
                "new_chat_member": member("member"),
            }
        }
    )
    await bot.api.wait_for(lambda: GROUP in bot.store.chats, what="upsert_chat")
    assert bot.store.chats[GROUP] == {
        "kind": "supergroup",
        "language": None,
        "title": "Fintech desk",
    }
    assert GROUP not in bot.store.subs  # joining subscribes nothing by itself


async def test_a_removed_topic_neither_blocks_start_nor_sticks(bot: Bot) -> None:
    bot.store.subs[USER] = ["retired-topic"]  # a rules reload removed this topic
    reply = await bot.say("/start")
    assert "gba-fintech" in bot.store.subs[USER], "defaults despite the orphan subscription"
    assert "now follows Greater Bay Area fintech" in reply.visible
    reply = await bot.say("/unsubscribe retired-topic")
    assert "retired-topic" not in bot.store.subs[USER]
    assert "Unknown topic" not in reply.visible


# --- languages ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "header", "stored"),
    [
        ("en-GB", "Commands", "en"),
        ("zh-hans", "命令", "zh-hans"),
        ("zh-cn", "命令", "zh-hans"),
        ("zh-hk", "指令", "zh-hant"),
        ("zh-TW", "指令", "zh-hant"),
        ("fr", "Commands", "en"),
    ],
)
async def test_replies_follow_the_telegram_language(
    bot: Bot, code: str, header: str, stored: str
) -> None:
    reply = await bot.say("/help", language_code=code)
    assert reply.visible.startswith(header)
    reply = await bot.say("/start", language_code=code)
    assert bot.store.chats[USER]["language"] == stored
    welcome = {"en": "Welcome!", "zh-hans": "欢迎！", "zh-hant": "歡迎！"}[stored]
    assert reply.visible.startswith(welcome)


async def test_language_command_and_buttons_change_the_chat_language(bot: Bot) -> None:
    reply = await bot.say("/language")
    assert reply.visible.startswith("Language: English")
    assert buttons(reply.reply_markup) == ["l:en", "l:zh-hans", "l:zh-hant"]
    answer = await bot.press(reply, "l:zh-hans")
    assert answer["text"] == "语言：简体中文"
    assert (await bot.prefs.prefs(USER)).language == "zh-hans"
    edited = bot.api.message(USER, reply.message_id)
    assert edited is not None and edited["text"].startswith("语言：简体中文")
    # The stored choice wins over the app's language_code ("en" here).
    assert (await bot.say("/help")).visible.startswith("命令")

    reply = await bot.say("/topics")  # the rules translate this title to zh-hant only
    assert "香港監管機構 – hk-regulators\n金管局与证监会<通告>" in reply.visible
    assert "Greater Bay Area fintech – gba-fintech\nFintech in the GBA" in reply.visible

    reply = await bot.say("/language zh-hant")
    assert reply.visible == "語言：繁體中文"
    reply = await bot.say("/topics")
    assert "香港監管機構 – hk-regulators\n金管局与证监会<通告>" in reply.visible
    assert (await bot.say("/stop")).visible.startswith("已停止")
    menus = [c.params for c in bot.api.requests("setMyCommands")]
    assert {m.get("language_code") for m in menus} == {"", "zh"}
    assert all(m["scope"] == {"type": "chat", "chat_id": USER} for m in menus)
    assert "語言" in str(menus[-1]["commands"])

    reply = await bot.say("/language klingon")
    assert reply.visible.startswith("用法：/language en | zh-hans | zh-hant")
    reply = await bot.say("/language english")
    assert reply.visible == "Language: English"


# --- access and flooding -----------------------------------------------------------------

STRANGER = 4242


async def test_allowlist_refuses_politely_in_the_users_language(clock: Clock) -> None:
    store = MemoryStore()
    deps = CommandDeps(
        store,
        Catalog,
        frozenset({ADMIN}),
        access="allowlist",
        allowed_users=frozenset({USER}),
        allowed_chats=frozenset({GROUP}),
        monotonic=lambda: clock.mono,
    )
    async with running(deps) as (api, _):
        reply = await say(api, "/start", STRANGER)
        assert "this bot is private" in reply.visible and "4242" in reply.visible
        reply = await say(api, "/subscribe banks", STRANGER, language_code="zh-tw")
        assert reply.visible.startswith("抱歉，這是私人機器人") and "4242" in reply.visible
        assert STRANGER not in store.chats and STRANGER not in store.subs

        answers = len(api.callback_answers)
        api.push_callback(STRANGER, reply.message_id, "s:banks", user_id=STRANGER)
        await api.wait_for(lambda: len(api.callback_answers) > answers, what="answer")
        assert api.callback_answers[-1]["show_alert"] is True
        assert STRANGER not in store.subs

        assert (await say(api, "/subscribe banks")).visible.startswith("Now following")
        assert (await say(api, "/help", ADMIN)).visible.startswith("Commands")
        group: dict[str, Any] = {"chat_id": GROUP, "chat_type": "supergroup"}
        reply = await say(api, "/topics", user_id=STRANGER, **group)
        assert reply.visible.startswith("Topics"), "anyone in an allowed chat"
        reply = await say(api, "/topics", -1009999, user_id=USER, chat_type="supergroup")
        assert reply.visible.startswith("Topics"), "an allowed user anywhere"
        reply = await say(api, "/topics", -1009999, user_id=STRANGER, chat_type="supergroup")
        assert "not open to this chat" in reply.visible and "-1009999" in reply.visible


async def test_a_flooding_user_is_told_once_then_ignored_until_refilled(clock: Clock) -> None:
    store = MemoryStore()
    deps = CommandDeps(
        store,
        Catalog,
        frozenset(),
        flood=FloodLimit(burst=3, per=30.0),
        monotonic=lambda: clock.mono,
    )
    async with running(deps) as (api, _):
        for _ in range(3):
            assert (await say(api, "/help")).visible.startswith("Commands")
        reply = await say(api, "/help")
        assert reply.visible == "You are sending commands too fast. Please wait 10 s and try again."
        api.push_message(USER, "/help", user_id=USER)  # dropped: no second warning
        api.push_message(USER, "/topics", user_id=USER)  # dropped
        other = await say(api, "/help", 1002)  # another user is not slowed down
        assert other.chat_id == 1002
        clock.mono += 10.0  # one token back
        reply = await say(api, "/help")
        assert reply.visible.startswith("Commands")
        assert [s.chat_id for s in api.sent] == [USER, USER, USER, USER, 1002, USER]


# --- /recent -------------------------------------------------------------------------------


async def test_recent_lists_the_chats_latest_stories_with_links(db: Store, clock: Clock) -> None:
    feed = Feed(url="http://127.0.0.1/a.xml", name="Outlet A")
    await db.feeds.sync([feed])
    await db.chats.subscribe(USER, ["gba-fintech", "hk-regulators"])
    for hours, title, link, topics in (
        (3, "Oldest GBA story", "http://x/1", ("gba-fintech",)),
        (2, 'HKMA & SFC <sandbox> "quotes"', 'http://x/2?a=1&b="2"', ("hk-regulators",)),
        (1, "Banks only, not followed", "http://x/3", ("banks",)),
        (0, "Newest GBA story", "javascript:alert(1)", ("gba-fintech", "hk-regulators")),
    ):
        at = NOW - timedelta(hours=hours)
        await builders.save(db, feed.url, [candidate(title, link, at, topics)], at)
    deps = CommandDeps(
        db.chats,
        Catalog,
        frozenset(),
        prefs=PrefStore(Database(db.engine)),
        clock=lambda: clock.now,
    )
    async with running(deps) as (api, _):
        reply = await say(api, "/recent")
        lines = reply.visible.splitlines()
        assert lines[0] == "Latest stories on this chat's topics"
        assert lines[1] == "1. Newest GBA story · 28 Nov 10:00 · #gba_fintech #hk_regulators"
        assert lines[2] == '2. HKMA & SFC <sandbox> "quotes" · 28 Nov 08:00 · #hk_regulators'
        assert lines[3].startswith("3. Oldest GBA story")
        assert len(lines) == 4, "a story on an unfollowed topic is not listed"
        assert '<a href="http://x/2?a=1&amp;b=&quot;2&quot;">' in reply.text
        assert "javascript" not in reply.text  # only http(s) links become anchors

        reply = await say(api, "/recent 1", language_code="zh-hk")
        assert reply.visible.splitlines()[1:] == [
            "1. Newest GBA story · 11月28日 10:00 · #gba_fintech #hk_regulators"
        ]
        assert (await say(api, "/recent 99")).visible.count("\n") == 3  # capped, not refused
        assert (await say(api, "/recent zero")).visible == "Usage: /recent [n], n from 1 to 20."
        reply = await say(api, "/recent", 1002)
        assert reply.visible == "This chat follows no topics yet: /topics"


def candidate(title: str, link: str, at: datetime, topics: Sequence[str]) -> Candidate:
    return builders.candidate(title, link, published=at, topics=topics)


# --- time zone, mute, digest -----------------------------------------------------------------


async def test_timezone_is_validated_and_stored(bot: Bot) -> None:
    reply = await bot.say("/timezone")
    assert reply.visible.startswith("This chat's time zone is Asia/Hong_Kong (now 28 Nov 10:00)")
    reply = await bot.say("/timezone europe/london")
    assert reply.visible == "Time zone set to Europe/London (now 28 Nov 02:00)."
    assert (await bot.prefs.prefs(USER)).timezone == "Europe/London"
    reply = await bot.say("/timezone Mars/<Olympus>")
    assert reply.visible.startswith("Unknown time zone Mars/<Olympus>. Use an Area/City name")
    reply = await bot.say("/timezone new york")
    assert reply.visible.startswith("Time zone set to America/New_York")


async def test_mute_and_unmute_store_the_end_of_the_mute(bot: Bot, clock: Clock) -> None:
    reply = await bot.say("/mute 2h")
    assert reply.visible.startswith("Muted until 28 Nov 12:00 (Asia/Hong_Kong).")
    assert (await bot.prefs.prefs(USER)).muted_until == NOW + timedelta(hours=2)

    reply = await bot.say("/mute")
    assert reply.visible.startswith("Usage: /mute DURATION")
    assert buttons(reply.reply_markup) == ["m:1h", "m:8h", "m:1d"]
    answer = await bot.press(reply, "m:1d")
    assert answer["text"] == "Muted until 29 Nov 10:00 Asia/Hong_Kong"
    assert (await bot.prefs.prefs(USER)).muted_until == NOW + timedelta(days=1)
    edited = bot.api.message(USER, reply.message_id)
    assert edited is not None and edited["text"].startswith("Muted until 29 Nov 10:00")
    assert "reply_markup" not in edited

    for bad, expected in (
        ("/mute 30", "Usage: /mute"),
        ("/mute soon", "Usage: /mute"),
        ("/mute 20s", "A mute lasts at least one minute"),
        ("/mute 45d", "A mute lasts at most 30 days"),
    ):
        assert (await bot.say(bad)).visible.startswith(expected), bad
    assert (await bot.prefs.prefs(USER)).muted_until == NOW + timedelta(days=1)

    clock.now = NOW + timedelta(hours=3)
    reply = await bot.say("/unmute")
    assert reply.visible == "Unmuted: held alerts arrive now as one digest."
    assert (await bot.prefs.prefs(USER)).muted_until == clock.now, "ended now, not erased"
    assert (await bot.say("/unmute")).visible == "This chat is not muted."


async def test_mute_and_digest_set_in_chat_release_held_alerts_as_one_message(
    db: Store, clock: Clock
) -> None:
    feed = Feed(url="http://127.0.0.1/a.xml", name="Outlet A")
    await db.feeds.sync([feed])

    async def publish(*titles: str) -> None:
        cands = [
            candidate(t, f"https://news.example/{t}", clock.now, ["gba-fintech"]) for t in titles
        ]
        await builders.save(db, feed.url, cands, clock.now)

    prefs = PrefStore(Database(db.engine))
    deps = CommandDeps(db.chats, Catalog, frozenset(), prefs=prefs, clock=lambda: clock.now)
    async with running(deps) as (api, application):
        deliverer = Deliverer(
            db,
            TelegramTransport(application.bot),
            clock=lambda: clock.now,
            tz=ZoneInfo("Asia/Hong_Kong"),  # display.timezone's default, as the commands use
            pacer=builders.unpaced(),
        )
        await say(api, "/subscribe gba-fintech")
        await say(api, "/language zh-hant")
        assert (await say(api, "/mute 1h")).visible.startswith("靜音至 11月28日 11:00")
        await publish("GBA story one", "GBA story two")
        assert (await deliverer.drain()).sent == 0
        clock.now += timedelta(hours=1)
        before = len(api.sent)
        assert (await deliverer.drain()).sent == 2
        [digest] = api.sent[before:]
        assert digest.visible.splitlines()[:2] == [
            "靜音期間：2 則提醒",
            "• GBA story one — Outlet A · 11月28日 10:00",
        ]

        reply = await say(api, "/digest hourly")
        assert reply.visible.startswith("提醒每小時整點合成一則摘要發送")
        clock.now += timedelta(minutes=5)  # 11:05 in Hong Kong
        await publish("GBA story three")
        assert (await deliverer.drain()).sent == 0
        clock.now += timedelta(minutes=55)
        before = len(api.sent)
        assert (await deliverer.drain()).sent == 1
        [digest] = api.sent[before:]
        assert digest.visible == "摘要：1 則提醒\n• GBA story three — Outlet A · 11月28日 11:05"


async def test_digest_settings_and_buttons(bot: Bot) -> None:
    reply = await bot.say("/digest daily 8:30")
    assert reply.visible == (
        "Alerts come as one digest a day at 08:30 (Asia/Hong_Kong). Next: 29 Nov 08:30."
    )
    assert (await bot.prefs.prefs(USER)).digest == "daily 08:30"
    reply = await bot.say("/digest hourly", language_code="zh-hk")
    assert (
        reply.visible
        == "提醒每小時整點合成一則摘要發送（Asia/Hong_Kong）。下一次：11月28日 11:00。"
    )
    assert (await bot.prefs.prefs(USER)).digest == "hourly"

    reply = await bot.say("/digest")
    assert reply.visible.startswith("Alerts come as one digest every hour")
    assert buttons(reply.reply_markup) == ["d:off", "d:hourly", "d:daily 08:00"]
    answer = await bot.press(reply, "d:off")
    assert answer["text"] == "Saved"
    assert (await bot.prefs.prefs(USER)).digest is None
    edited = bot.api.message(USER, reply.message_id)
    assert edited is not None and edited["text"].startswith("No digest")
    labels = [b["text"] for b in edited["reply_markup"]["inline_keyboard"][0]]
    assert labels == ["✅ Off", "Hourly", "Daily 08:00"]
    await bot.press(reply, "d:daily 08:00")
    assert (await bot.prefs.prefs(USER)).digest == "daily 08:00"

    for bad in ("/digest weekly", "/digest daily 25:00", "/digest hourly 5"):
        assert (await bot.say(bad)).visible.startswith("Usage: /digest off | hourly"), bad


async def test_in_groups_only_admins_change_settings(bot: Bot) -> None:
    bot.api.set_admins(GROUP, {ADMIN + 1})
    group: dict[str, Any] = {"chat_id": GROUP, "chat_type": "supergroup"}
    for command in ("/mute 1h", "/unmute", "/digest hourly", "/timezone UTC", "/language zh"):
        reply = await bot.say(command, user_id=USER, **group)
        assert reply.visible.startswith("Only this group's administrators"), command
    assert await bot.prefs.prefs(GROUP) == ChatPrefs()
    reply = await bot.say("/digest", user_id=USER, **group)  # reading is fine
    answer = await bot.press(reply, "d:hourly", user_id=USER, redraw=False)
    assert answer["show_alert"] is True
    assert await bot.prefs.prefs(GROUP) == ChatPrefs()

    reply = await bot.say("/language zh-hans", user_id=ADMIN + 1, **group)
    assert reply.visible == "语言：简体中文"
    reply = await bot.say("/mute 1h", user_id=ADMIN + 1, **group)
    assert reply.visible.startswith("静音至 11月28日 11:00")
    prefs = await bot.prefs.prefs(GROUP)
    assert prefs.language == "zh-hans" and prefs.muted_until == NOW + timedelta(hours=1)
    reply = await bot.say("/recent", user_id=USER, **group)  # members read, in the group's language
    assert reply.visible == "本聊天尚未关注任何主题：/topics"


async def test_forum_topic_commands_are_answered_in_their_thread(bot: Bot) -> None:
    forum: dict[str, Any] = {"chat_id": GROUP, "chat_type": "supergroup", "message_thread_id": 77}
    bot.api.set_admins(GROUP, {USER})
    reply = await bot.say("/topics", user_id=USER, **forum)
    assert reply.message_thread_id == 77
    reply = await bot.say("/frobnicate@newsbot_test_bot", user_id=USER, **forum)
    assert reply.message_thread_id == 77
    bot.store.fail_for = GROUP
    reply = await bot.say("/topics", user_id=USER, **forum)
    assert reply.visible == "Sorry, something went wrong. Please try again."
    assert reply.message_thread_id == 77


# --- odds and ends -------------------------------------------------------------------------


async def test_stale_buttons_and_plain_text_get_an_answer(bot: Bot) -> None:
    reply = await bot.say("/help")
    answer = await bot.press(reply, "x:from-an-old-version", redraw=False)
    assert answer["text"] == "This button is out of date; send the command again."
    reply = await bot.say("hello there")
    assert reply.visible == "I answer commands: /help lists them."


async def test_without_a_preference_store_the_commands_say_so() -> None:
    deps = CommandDeps(MemoryStore(), Catalog, frozenset())
    async with running(deps) as (api, _):
        for command in ("recent", "mute 1h", "unmute", "digest", "timezone", "language"):
            reply = await say(api, f"/{command}")
            name = command.split()[0]
            assert reply.visible == f"/{name} is not available in this setup.", command
        reply = await say(api, "/help", language_code="zh-mo")
        assert reply.visible.startswith("指令")


async def test_set_menus_registers_menus_per_language_and_for_operators(bot: Bot) -> None:
    await bot.prefs.set_language(ADMIN, "zh-hans", kind="private")
    bot.api.requests("setMyCommands").clear()
    await set_menus(bot.application, admins=frozenset({ADMIN}), prefs=bot.prefs)
    calls = [c.params for c in bot.api.requests("setMyCommands")]
    default = [c for c in calls if "scope" not in c]
    assert [c["language_code"] for c in default] == ["", "zh"]
    names = [c["command"] for c in default[0]["commands"]]
    assert names[:4] == ["start", "topics", "subscribe", "unsubscribe"] and "status" not in names
    assert default[0]["commands"][0]["description"] == "Welcome and the list of topics"
    assert default[1]["commands"][0]["description"] == "歡迎，並列出所有主題"
    admin = [c for c in calls if c.get("scope") == {"type": "chat", "chat_id": ADMIN}]
    assert [c["language_code"] for c in admin] == ["", "zh"]
    assert all("status" in str(c["commands"]) and "欢迎" in str(c["commands"]) for c in admin)

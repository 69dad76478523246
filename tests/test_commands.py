"""Chat commands through a real polling python-telegram-bot Application and the fake Bot API.

Every test pushes updates into the fake server's getUpdates queue and waits for the bot's
replies; nothing calls a handler directly. The store is ``MemoryStore`` below, a plain
implementation of ``SubscriptionStore`` (the same tests can run against the real store).
The fake server refuses HTML Telegram would refuse, so every reply checked here is valid.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from fakebotapi import FakeBotApi, Sent

from bot.model import Keyword, Topic
from bot.telegram.commands import CommandDeps, register
from bot.telegram.transport import build_application, start_polling, stop_polling

TOKEN = "777000:AAHcommandscommandscommands"
USER = 1001
ADMIN = 9000
GROUP = -1005550001

TOPICS = (
    Topic("gba-fintech", "Greater Bay Area fintech", Keyword("GBA"), "Fintech in the GBA", True),
    Topic("hk-regulators", "HK regulators", Keyword("HKMA"), "HKMA & SFC <circulars>"),
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

    async def say(self, text: str, chat_id: int = USER, **kw: Any) -> Sent:
        """Send ``text`` as a user and return the bot's next reply."""
        before = len(self.api.sent)
        kw.setdefault("user_id", chat_id if chat_id > 0 else USER)
        self.api.push_message(chat_id, text, **kw)
        return (await self.api.wait_for_sent(before + 1))[before]

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


def buttons(markup: dict[str, object] | None) -> list[str]:
    rows = (markup or {}).get("inline_keyboard", [])
    return [b["callback_data"] for row in rows for b in row]  # type: ignore[attr-defined]


@pytest.fixture
async def bot() -> AsyncIterator[Bot]:
    calls: list[str] = []

    async def status() -> str:
        calls.append("status")
        return "uptime 5m\nqueue: 3 pending <ok>"

    store = MemoryStore()
    deps = CommandDeps(store, Catalog, frozenset({ADMIN}), status=status)
    async with FakeBotApi(TOKEN) as api:
        application = build_application(TOKEN, api.api_url)
        register(application, deps)
        await start_polling(application, poll_timeout=1)
        try:
            yield Bot(api, store, calls)
        finally:
            await stop_polling(application)


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

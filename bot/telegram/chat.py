"""What every chat command handler shares: its dependencies, the chat's language and time
zone, who may change a chat's settings, and replying.

``CommandDeps`` is what the composition root passes in. The handlers know the store and the
rulebook only through the small protocols here, never their types.

Language of a reply: the chat's stored language (``/language``, or what ``/start`` recorded
for a private chat), else the sender's Telegram ``language_code`` (``i18n.pick_language``).
Replies that must not touch the store (access refusals, "slow down", the apology after a
failure) use the sender's ``language_code`` only.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from telegram import (
    BotCommand,
    BotCommandScopeChat,
    ChatMember,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
    Update,
)
from telegram.constants import ChatType, ParseMode
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from bot.model import Story, Topic
from bot.telegram.i18n import MENU_LANGUAGES, menu, pick_language
from bot.telegram.options import FloodLimit

log = logging.getLogger("bot.telegram.commands")

Context = ContextTypes.DEFAULT_TYPE
DEFAULT_TIMEZONE = "Asia/Hong_Kong"
ADMIN_CACHE_SECONDS = 60.0
_ADMIN_STATUSES = (ChatMember.ADMINISTRATOR, ChatMember.OWNER)
GROUPS = (ChatType.GROUP, ChatType.SUPERGROUP)


class SubscriptionStore(Protocol):
    """The part of the store the commands use for chats and subscriptions."""

    async def upsert_chat(
        self, chat_id: int, *, kind: str, language: str | None = None, title: str | None = None
    ) -> None: ...

    async def subscribe(self, chat_id: int, topic_ids: Sequence[str]) -> list[str]:
        """Follow ``topic_ids``; the ids that were not followed before."""
        ...

    async def unsubscribe(self, chat_id: int, topic_ids: Sequence[str]) -> list[str]:
        """Unfollow ``topic_ids``; the ids that were followed before."""
        ...

    async def unsubscribe_all(self, chat_id: int) -> int: ...

    async def subscriptions(self, chat_id: int) -> list[str]: ...


class Prefs(Protocol):
    """A chat's stored preferences (``bot.store.prefs.ChatPrefs``)."""

    @property
    def language(self) -> str | None: ...
    @property
    def timezone(self) -> str | None: ...
    @property
    def muted_until(self) -> datetime | None: ...
    @property
    def digest(self) -> str | None: ...


class PrefsStore(Protocol):
    """The part of the store the commands use for preferences (``bot.store.prefs``)."""

    async def prefs(self, chat_id: int) -> Prefs: ...
    async def set_language(self, chat_id: int, language: str, *, kind: str) -> None: ...
    async def set_timezone(self, chat_id: int, timezone: str | None, *, kind: str) -> None: ...
    async def set_digest(self, chat_id: int, digest: str | None, *, kind: str) -> None: ...
    async def mute(self, chat_id: int, until: datetime, *, kind: str) -> None: ...
    async def unmute(self, chat_id: int, now: datetime) -> bool: ...
    async def recent(self, chat_id: int, limit: int) -> list[Story]: ...


class TopicCatalog(Protocol):
    """The part of a rulebook snapshot the commands use."""

    @property
    def topics(self) -> tuple[Topic, ...]: ...

    def topic(self, topic_id: str) -> Topic | None: ...


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class CommandDeps:
    """What the handlers need. ``rulebook`` is called per command: reloads show at once.

    ``status``, ``reload`` and ``feeds`` return plain text for operators; None hides them.
    Without ``prefs``, /recent, /mute, /unmute, /digest, /timezone and /language say they are
    not available and replies follow the sender's Telegram language. ``access`` "allowlist"
    lets in only ``allowed_users``, chats in ``allowed_chats`` and the ``admins``. ``clock``
    (aware UTC) and ``monotonic`` (seconds, for flood control) are swapped in tests.
    """

    store: SubscriptionStore
    rulebook: Callable[[], TopicCatalog]
    admins: frozenset[int]
    status: Callable[[], Awaitable[str]] | None = None
    reload: Callable[[], Awaitable[str]] | None = None
    feeds: Callable[[], Awaitable[str]] | None = None
    prefs: PrefsStore | None = None
    access: str = "open"
    allowed_users: frozenset[int] = frozenset()
    allowed_chats: frozenset[int] = frozenset()
    timezone: str = DEFAULT_TIMEZONE
    clock: Callable[[], datetime] = utcnow
    monotonic: Callable[[], float] = time.monotonic
    flood: FloodLimit = field(default_factory=FloodLimit)


@dataclass
class Chat:
    """Helpers over ``CommandDeps`` shared by the handler classes."""

    deps: CommandDeps
    _admin_cache: dict[tuple[int, int], tuple[float, bool]] = field(default_factory=dict)

    async def prefs(self, update: Update) -> Prefs | None:
        chat = update.effective_chat
        if self.deps.prefs is None or chat is None:
            return None
        return await self.deps.prefs.prefs(chat.id)

    async def lang(self, update: Update, prefs: Prefs | None = None) -> str:
        """The language to answer ``update`` in (see the module docstring)."""
        prefs = prefs or await self.prefs(update)
        if prefs is not None and prefs.language:
            return pick_language(prefs.language)
        return sender_language(update)

    def zone(self, prefs: Prefs | None) -> tuple[str, tzinfo]:
        """The chat's time zone name and zone; the default if unset or no longer valid."""
        name = (prefs.timezone if prefs else None) or self.deps.timezone
        try:
            return name, ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            return self.deps.timezone, ZoneInfo(self.deps.timezone)

    def is_operator(self, update: Update) -> bool:
        user = update.effective_user
        return user is not None and user.id in self.deps.admins

    def allowed(self, update: Update) -> bool:
        """Whether ``telegram.access`` lets this user, in this chat, use the bot."""
        chat, user = update.effective_chat, update.effective_user
        if self.deps.access == "open" or self.is_operator(update):
            return True
        return (user is not None and user.id in self.deps.allowed_users) or (
            chat is not None and chat.id in self.deps.allowed_chats
        )

    async def may_change(self, update: Update, context: Context) -> bool:
        """Private chats change their own settings; in groups only administrators."""
        chat, user, message = update.effective_chat, update.effective_user, update.effective_message
        if chat is None or chat.type not in GROUPS or self.is_operator(update):
            return chat is not None and chat.type != ChatType.CHANNEL
        if message is not None and message.sender_chat and message.sender_chat.id == chat.id:
            return True  # an anonymous administrator writes as the group itself
        return user is not None and await self._is_chat_admin(context, chat.id, user.id)

    async def _is_chat_admin(self, context: Context, chat_id: int, user_id: int) -> bool:
        now = time.monotonic()
        cached = self._admin_cache.get((chat_id, user_id))
        if cached and cached[0] > now:
            return cached[1]
        try:
            member = await context.bot.get_chat_member(chat_id, user_id)
        except TelegramError as exc:
            log.warning("getChatMember failed for chat %s: %s", chat_id, type(exc).__name__)
            return False
        answer = member.status in _ADMIN_STATUSES
        self._admin_cache[(chat_id, user_id)] = (now + ADMIN_CACHE_SECONDS, answer)
        return answer


def sender_language(update: Update) -> str:
    user = update.effective_user
    return pick_language(user.language_code if user else None)


async def reply(update: Update, text: str, markup: InlineKeyboardMarkup | None = None) -> None:
    """Answer in the same chat and forum topic (PTB keeps ``message_thread_id``)."""
    message = update.effective_message
    if message is None:
        return
    await message.reply_text(
        text,
        parse_mode=ParseMode.HTML,
        reply_markup=markup,
        link_preview_options=LinkPreviewOptions(is_disabled=True),
    )


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


async def set_chat_menu(bot: Any, chat_id: int, lang: str | None, *, operator: bool) -> None:
    """Give one chat its own menu in ``lang`` (None: English, and Traditional for ``zh``).

    Written for both the default and the ``zh`` language code, so the chat's choice wins
    whatever language its members' apps use.
    """
    scope = BotCommandScopeChat(chat_id)
    for code, default in MENU_LANGUAGES:
        entries = menu(lang or default, operator=operator)
        await set_commands(bot, entries, language_code=code, scope=scope)


async def set_commands(bot: Any, entries: Sequence[tuple[str, str]], **kw: Any) -> None:
    try:
        await bot.set_my_commands([BotCommand(c, d) for c, d in entries], **kw)
    except TelegramError as exc:
        log.warning("setMyCommands failed: %s", exc.message.replace(bot.token, "[token]"))

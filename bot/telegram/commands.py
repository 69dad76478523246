"""Chat commands: what subscribers and operators do from Telegram.

Everyone: ``/start`` (remember the chat; a chat without subscriptions gets the ``default``
topics; a topic list with buttons), ``/topics``, ``/subscribe ID…``, ``/unsubscribe ID…``,
``/stop`` (everything off) and ``/help``. Operators (``telegram.admins``): ``/status``,
``/reload``, ``/feeds``. Anything else that looks like a command gets a short hint.

Topic ids are matched leniently: case-insensitive, ``#gba_fintech`` (as hashtags show them)
is ``gba-fintech``, and ``a,b`` is two ids. Buttons carry ``s:ID`` (follow) or ``u:ID``
(unfollow), so pressing a stale button twice does the same thing twice rather than toggling
back; the keyboard is redrawn in place after each press.

In groups only the group's administrators (and the bot's operators) change subscriptions;
membership is asked with getChatMember and remembered for ``ADMIN_CACHE_SECONDS``. Replies are
HTML with every value escaped. A failing handler is logged (token redacted) and the user gets
one apologetic line, never a traceback. This module does not send alerts (``transport`` does)
and does not know the store or rulebook types, only the small protocols below.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Any, Protocol

from telegram import (
    CallbackQuery,
    ChatMember,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
    Update,
)
from telegram.constants import ChatType, ParseMode
from telegram.error import BadRequest, TelegramError
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    ChatMemberHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.model import Topic

log = logging.getLogger(__name__)

Context = ContextTypes.DEFAULT_TYPE
Reply = Callable[[Update, Context], Coroutine[Any, Any, None]]

MENU: tuple[tuple[str, str], ...] = (
    ("start", "Welcome and the list of topics"),
    ("topics", "Topics and what this chat follows"),
    ("subscribe", "Follow topics: /subscribe ID …"),
    ("unsubscribe", "Stop following topics: /unsubscribe ID …"),
    ("stop", "Stop all alerts in this chat"),
    ("help", "How to use this bot"),
)
ADMIN_CACHE_SECONDS = 60.0
MAX_BUTTONS = 40  # Telegram allows ~100 buttons; a long list is unreadable well before that
MAX_LIST_CHARS = 3500  # the topic list stays well under the 4096-character message limit
_ADMIN_STATUSES = (ChatMember.ADMINISTRATOR, ChatMember.OWNER)
_GROUPS = (ChatType.GROUP, ChatType.SUPERGROUP)


class SubscriptionStore(Protocol):
    """The part of the store the commands use."""

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


class TopicCatalog(Protocol):
    """The part of a rulebook snapshot the commands use."""

    @property
    def topics(self) -> tuple[Topic, ...]: ...

    def topic(self, topic_id: str) -> Topic | None: ...


@dataclass
class CommandDeps:
    """What the handlers need. ``rulebook`` is called per command: reloads show at once.

    ``status``, ``reload`` and ``feeds`` return plain text for operators; None hides them.
    """

    store: SubscriptionStore
    rulebook: Callable[[], TopicCatalog]
    admins: frozenset[int]
    status: Callable[[], Awaitable[str]] | None = None
    reload: Callable[[], Awaitable[str]] | None = None
    feeds: Callable[[], Awaitable[str]] | None = None


def register(application: Application, deps: CommandDeps) -> None:  # type: ignore[type-arg]
    """Add the command, button and error handlers to ``application``."""
    h = _Handlers(deps)
    for name, callback in (
        ("start", h.start),
        ("help", h.help),
        ("topics", h.topics),
        ("subscribe", h.subscribe),
        ("unsubscribe", h.unsubscribe),
        ("stop", h.stop),
        ("status", h.operator("status", deps.status)),
        ("reload", h.operator("reload", deps.reload)),
        ("feeds", h.operator("feeds", deps.feeds)),
    ):
        application.add_handler(CommandHandler(name, callback))
    application.add_handler(CallbackQueryHandler(h.button, pattern=r"^[su]:"))
    application.add_handler(MessageHandler(filters.COMMAND, h.unknown))
    application.add_handler(ChatMemberHandler(h.added, ChatMemberHandler.MY_CHAT_MEMBER))
    application.add_error_handler(h.error)


@dataclass
class _Handlers:
    deps: CommandDeps
    _admin_cache: dict[tuple[int, int], tuple[float, bool]] = field(default_factory=dict)

    async def start(self, update: Update, context: Context) -> None:
        chat, user = update.effective_chat, update.effective_user
        if chat is None:
            return
        language = user.language_code if user and chat.type == ChatType.PRIVATE else None
        title = chat.title or chat.username or chat.full_name
        await self.deps.store.upsert_chat(chat.id, kind=chat.type, language=language, title=title)
        lines = ["<b>Welcome!</b> I send alerts about news on the topics below."]
        current = await self._current(chat.id)
        if not current and await self._may_change(update, context):
            defaults = [t.id for t in self.deps.rulebook().topics if t.default]
            current = await self.deps.store.subscribe(chat.id, defaults) if defaults else []
            if current:
                lines.append(f"This chat now follows {self._names(current)}.")
        lines.append("Tap a topic to follow or unfollow it; /help lists the commands.")
        await self._topic_list(update, "\n".join(lines), current)

    async def help(self, update: Update, context: Context) -> None:
        lines = ["<b>Commands</b>"] + [f"/{c} – {escape(d)}" for c, d in MENU]
        if self._is_operator(update):
            lines += ["", "<b>Operators</b>", "/status", "/reload", "/feeds"]
        lines += ["", "In groups, only the group's administrators change its subscriptions."]
        await _reply(update, "\n".join(lines))

    async def topics(self, update: Update, context: Context) -> None:
        chat = update.effective_chat
        if chat is None:
            return
        current = await self._current(chat.id)
        await self._topic_list(update, "<b>Topics</b> (tap to follow or unfollow)", current)

    async def subscribe(self, update: Update, context: Context) -> None:
        await self._change(update, context, follow=True)

    async def unsubscribe(self, update: Update, context: Context) -> None:
        await self._change(update, context, follow=False)

    async def stop(self, update: Update, context: Context) -> None:
        chat = update.effective_chat
        if chat is None:
            return
        if not await self._may_change(update, context):
            await _reply(update, _ADMINS_ONLY)
            return
        removed = await self.deps.store.unsubscribe_all(chat.id)
        plural = "" if removed == 1 else "s"
        await _reply(
            update,
            f"Stopped: {removed} subscription{plural} removed, no more alerts here. "
            "/start brings them back.",
        )

    def operator(self, name: str, action: Callable[[], Awaitable[str]] | None) -> Reply:
        """A handler for an operator command that runs ``action`` and shows its text."""

        async def handle(update: Update, context: Context) -> None:
            if not self._is_operator(update):
                await _reply(update, f"Sorry, /{name} is only for this bot's operators.")
            elif action is None:
                await _reply(update, f"/{name} is not available in this setup.")
            else:
                text = await action()
                await _reply(update, f"<pre>{escape(_clip(text, MAX_LIST_CHARS))}</pre>")

        return handle

    async def unknown(self, update: Update, context: Context) -> None:
        message, chat = update.effective_message, update.effective_chat
        if message is None or chat is None or not message.text:
            return
        word = message.text.split()[0]
        command, _, addressee = word.partition("@")
        ours = addressee.casefold() == (context.bot.username or "").casefold()
        if chat.type != ChatType.PRIVATE and not ours:
            return  # in a group, a bare unknown command is probably another bot's
        await _reply(update, f"I don't know {escape(command)}. /help lists what I can do.")

    async def button(self, update: Update, context: Context) -> None:
        query, chat = update.callback_query, update.effective_chat
        if query is None or query.data is None or chat is None:
            return
        if not await self._may_change(update, context):
            await query.answer(_ADMINS_ONLY_PLAIN, show_alert=True)
            return
        action, _, topic_id = query.data.partition(":")
        topic = self.deps.rulebook().topic(topic_id)
        if topic is None:
            await query.answer("That topic no longer exists.")
        elif action == "s":
            await self.deps.store.subscribe(chat.id, [topic.id])
            await query.answer(f"Following {_clip(topic.title, 150)}")
        else:
            await self.deps.store.unsubscribe(chat.id, [topic.id])
            await query.answer(f"Stopped following {_clip(topic.title, 140)}")
        await self._redraw(query, await self._current(chat.id))

    async def added(self, update: Update, context: Context) -> None:
        """The bot joined a group or was unblocked: remember the chat."""
        member = update.my_chat_member
        if member is None or member.new_chat_member.status in ("left", "kicked"):
            return
        chat = member.chat
        await self.deps.store.upsert_chat(chat.id, kind=chat.type, title=chat.title)

    async def error(self, update: object, context: Context) -> None:
        """Log a failed handler without the token; tell the user briefly."""
        token = context.bot.token
        err = context.error
        trace = "".join(traceback.format_exception(err)) if err else "unknown error"
        log.error("chat command failed: %s", trace.replace(token, "[token]") if token else trace)
        if isinstance(update, Update) and update.effective_chat is not None:
            try:
                await context.bot.send_message(
                    update.effective_chat.id, "Sorry, something went wrong. Please try again."
                )
            except TelegramError as exc:
                log.warning("could not tell the chat about the failure: %s", type(exc).__name__)

    # helpers

    async def _current(self, chat_id: int) -> list[str]:
        """The chat's subscriptions to topics that exist now (a reload may remove topics)."""
        ids = {t.id for t in self.deps.rulebook().topics}
        return [t for t in await self.deps.store.subscriptions(chat_id) if t in ids]

    async def _change(self, update: Update, context: Context, *, follow: bool) -> None:
        chat = update.effective_chat
        if chat is None:
            return
        verb = "subscribe" if follow else "unsubscribe"
        catalog = self.deps.rulebook()
        wanted = [w for arg in context.args or () for w in arg.replace(",", " ").split()]
        if not wanted:
            await _reply(update, f"Usage: /{verb} ID …\n{_valid_ids(catalog)}")
            return
        if not await self._may_change(update, context):
            await _reply(update, _ADMINS_ONLY)
            return
        known, unknown = _resolve(catalog, wanted)
        if not follow and unknown:
            # A topic removed from the rules may still be subscribed: let it be unsubscribed.
            held = {_key(t): t for t in await self.deps.store.subscriptions(chat.id)}
            known += [held[_key(w)] for w in unknown if _key(w) in held]
            unknown = [w for w in unknown if _key(w) not in held]
        lines = []
        if unknown:
            names = ", ".join(f"<code>{escape(u)}</code>" for u in unknown)
            lines.append(f"Unknown topic: {names}.\n{_valid_ids(catalog)}")
        if known:
            lines.append(await self._apply(chat.id, known, follow=follow))
        await _reply(update, "\n".join(lines))

    async def _apply(self, chat_id: int, ids: list[str], *, follow: bool) -> str:
        store = self.deps.store
        changed = await (store.subscribe if follow else store.unsubscribe)(chat_id, ids)
        same = [i for i in ids if i not in changed]
        lines = []
        if changed:
            lines.append(
                ("Now following " if follow else "Stopped following ") + self._names(changed)
            )
        if same:
            lines.append(
                ("Already following " if follow else "Was not following ") + self._names(same)
            )
        return "\n".join(f"{line}." for line in lines)

    async def _topic_list(self, update: Update, header: str, current: Sequence[str]) -> None:
        catalog = self.deps.rulebook()
        body = _clip_lines([_describe(t) for t in catalog.topics], MAX_LIST_CHARS - len(header))
        text = "\n\n".join([header, body or "No topics are configured yet."])
        await _reply(update, text, _keyboard(catalog.topics, current))

    async def _redraw(self, query: CallbackQuery, current: Sequence[str]) -> None:
        try:
            await query.edit_message_reply_markup(_keyboard(self.deps.rulebook().topics, current))
        except BadRequest as exc:
            if "not modified" not in exc.message:
                raise

    def _names(self, ids: Sequence[str]) -> str:
        catalog = self.deps.rulebook()
        titles = [(t.title if (t := catalog.topic(i)) else i) for i in ids]
        return ", ".join(f"<b>{escape(_clip(title, 100))}</b>" for title in titles)

    def _is_operator(self, update: Update) -> bool:
        user = update.effective_user
        return user is not None and user.id in self.deps.admins

    async def _may_change(self, update: Update, context: Context) -> bool:
        """Private chats change their own subscriptions; in groups only administrators."""
        chat, user, message = update.effective_chat, update.effective_user, update.effective_message
        if chat is None or chat.type not in _GROUPS or self._is_operator(update):
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


_ADMINS_ONLY_PLAIN = "Only this group's administrators can change its subscriptions."
_ADMINS_ONLY = escape(_ADMINS_ONLY_PLAIN)


async def _reply(update: Update, text: str, markup: InlineKeyboardMarkup | None = None) -> None:
    message = update.effective_message
    if message is None:
        return
    await message.reply_text(
        text,
        parse_mode=ParseMode.HTML,
        reply_markup=markup,
        link_preview_options=LinkPreviewOptions(is_disabled=True),
    )


def _describe(topic: Topic) -> str:
    line = f"<b>{escape(_clip(topic.title, 100))}</b> – <code>{escape(topic.id)}</code>"
    if topic.description:
        line += f"\n{escape(_clip(' '.join(topic.description.split()), 160))}"
    return line


def _keyboard(topics: Sequence[Topic], current: Sequence[str]) -> InlineKeyboardMarkup:
    rows = []
    for topic in topics[:MAX_BUTTONS]:
        following = topic.id in current
        data = f"{'u' if following else 's'}:{topic.id}"
        if len(data.encode()) > 64:  # Telegram's callback_data limit; /subscribe still works
            continue
        label = f"{'✅' if following else '➕'} {_clip(topic.title, 40)}"
        rows.append([InlineKeyboardButton(label, callback_data=data)])
    return InlineKeyboardMarkup(rows)


def _resolve(catalog: TopicCatalog, wanted: Sequence[str]) -> tuple[list[str], list[str]]:
    """(known topic ids, unknown words) for what a user typed, in order, without repeats."""
    by_key = {_key(t.id): t.id for t in catalog.topics}
    known: list[str] = []
    unknown: list[str] = []
    for word in wanted:
        topic_id = by_key.get(_key(word))
        target, value = (known, topic_id) if topic_id else (unknown, word)
        if value not in target:
            target.append(value)
    return known, unknown


def _key(topic_id: str) -> str:
    return topic_id.lstrip("#").casefold().replace("-", "_")


def _valid_ids(catalog: TopicCatalog) -> str:
    ids = ", ".join(f"<code>{escape(t.id)}</code>" for t in catalog.topics[:MAX_BUTTONS])
    return f"Topics: {ids}." if ids else "No topics are configured yet."


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _clip_lines(blocks: Sequence[str], limit: int) -> str:
    shown: list[str] = []
    used = 0
    for block in blocks:
        if used + len(block) + 2 > limit:
            shown.append(f"… and {len(blocks) - len(shown)} more: /subscribe ID")
            break
        shown.append(block)
        used += len(block) + 2
    return "\n\n".join(shown)

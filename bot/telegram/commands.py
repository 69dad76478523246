"""Chat commands: what subscribers and operators do from Telegram, in their language.

Everyone: ``/start`` (remember the chat; a chat without subscriptions gets the ``default``
topics; a topic list with buttons), ``/topics``, ``/subscribe ID…``, ``/unsubscribe ID…``,
``/stop`` (everything off) and ``/help``; the preference commands ``/recent``, ``/mute``,
``/unmute``, ``/digest``, ``/timezone`` and ``/language`` live in ``tuning``. Operators
(``telegram.admins``): ``/status``, ``/reload``, ``/feeds``. Anything else that looks like a
command gets a short hint; plain text in a private chat points to /help.

Topic ids are matched leniently: case-insensitive, ``#gba_fintech`` (as hashtags show them)
is ``gba-fintech``, and ``a,b`` is two ids. Buttons carry ``s:ID`` (follow) or ``u:ID``
(unfollow), so pressing a stale button twice does the same thing twice rather than toggling
back; the keyboard is redrawn in place after each press.

Before any handler, a gate (handler group -1) applies flood control and ``telegram.access``
to messages meant for this bot and to button presses. Flood control is a token bucket per
user (``options.admit``): one polite "slow down", then silence until the bucket refills.
An allowlist refusal names the user's or chat's id, so the operator can add it.

In groups only the group's administrators (and the bot's operators) change subscriptions and
settings; membership is asked with getChatMember and cached for a minute. Replies are HTML with
every value escaped, in the forum topic the command came from. A failing handler is logged
(token redacted) and the user gets one apologetic line, never a traceback.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Any

from telegram import (
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Update,
)
from telegram.constants import ChatType
from telegram.error import BadRequest, TelegramError
from telegram.ext import (
    Application,
    ApplicationHandlerStop,
    CallbackQueryHandler,
    ChatMemberHandler,
    CommandHandler,
    MessageHandler,
    TypeHandler,
    filters,
)

from bot.model import Topic
from bot.telegram import tuning
from bot.telegram.chat import (
    Chat,
    CommandDeps,
    Context,
    PrefsStore,
    SubscriptionStore,
    TopicCatalog,
    clip,
    reply,
    sender_language,
    set_chat_menu,
    set_commands,
)
from bot.telegram.i18n import (
    COMMANDS,
    EN,
    MENU_LANGUAGES,
    OPERATOR_COMMANDS,
    menu,
    pick_language,
    t,
    topic_description,
    topic_title,
)
from bot.telegram.options import Bucket, Verdict, admit, wait_seconds

__all__ = [
    "MENU",
    "CommandDeps",
    "PrefsStore",
    "SubscriptionStore",
    "TopicCatalog",
    "register",
    "set_chat_menu",
    "set_menus",
]

log = logging.getLogger(__name__)

Reply = Callable[[Update, Context], Coroutine[Any, Any, None]]

MENU: tuple[tuple[str, str], ...] = menu(EN)  # the English menu (``transport.set_commands``)
MAX_BUTTONS = 40  # Telegram allows ~100 buttons; a long list is unreadable well before that
MAX_LIST_CHARS = 3500  # the topic list stays well under the 4096-character message limit
MAX_BUCKETS = 10_000  # flood buckets kept before full ones are forgotten


def register(application: Application, deps: CommandDeps) -> None:  # type: ignore[type-arg]
    """Add the gate, command, button and error handlers to ``application``."""
    h = _Handlers(deps)
    more = tuning.Tuning(h.chat)
    application.add_handler(TypeHandler(Update, h.gate), group=-1)
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
        *more.commands(),
    ):
        application.add_handler(CommandHandler(name, callback))
    application.add_handler(CallbackQueryHandler(h.button, pattern=r"^[su]:"))
    for pattern, callback in more.buttons():
        application.add_handler(CallbackQueryHandler(callback, pattern=pattern))
    application.add_handler(CallbackQueryHandler(h.stale_button))
    application.add_handler(MessageHandler(filters.COMMAND, h.unknown))
    application.add_handler(
        MessageHandler(filters.TEXT & filters.ChatType.PRIVATE & ~filters.COMMAND, h.hint)
    )
    application.add_handler(ChatMemberHandler(h.added, ChatMemberHandler.MY_CHAT_MEMBER))
    application.add_error_handler(h.error)


async def set_menus(
    application: Application,  # type: ignore[type-arg]
    *,
    admins: frozenset[int] = frozenset(),
    prefs: PrefsStore | None = None,
) -> None:
    """Register the command menus (setMyCommands) at start-up; failures are logged only.

    The default menu is English, the ``zh`` one Traditional (see ``i18n``). Each operator
    gets a chat menu with the operator commands, in their stored language if ``prefs`` knows
    it; an operator who never talked to the bot cannot have one yet (Telegram: chat not found).
    """
    bot = application.bot
    for code, lang in MENU_LANGUAGES:
        await set_commands(bot, menu(lang), language_code=code)
    for admin in sorted(admins):
        stored = (await prefs.prefs(admin)).language if prefs is not None else None
        await set_chat_menu(bot, admin, pick_language(stored) if stored else None, operator=True)


@dataclass
class _Handlers:
    deps: CommandDeps
    chat: Chat = field(init=False)
    _buckets: dict[int, Bucket] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.chat = Chat(self.deps)

    async def gate(self, update: Update, context: Context) -> None:
        """Flood control and access, before any handler; stops the update when refused."""
        chat, user = update.effective_chat, update.effective_user
        if chat is None or user is None:
            return
        if update.callback_query is None and not _addressed(update, context):
            return  # not for this bot (another bot's command, a member joining...)
        verdict, bucket = self._admit(user.id)
        if verdict is Verdict.OK and self.chat.allowed(update):
            return
        lang = sender_language(update)
        if verdict is Verdict.WARN:
            seconds = wait_seconds(bucket, self.deps.flood)
            await _tell(update, t(lang, "flood.slow", seconds=seconds))
        elif verdict is Verdict.OK:  # refused by telegram.access
            key = "access.refused" if chat.type == ChatType.PRIVATE else "access.refused_chat"
            await _tell(update, t(lang, key, id=user.id if chat.type == "private" else chat.id))
        elif update.callback_query is not None:
            await update.callback_query.answer()  # silent, but stop the button's spinner
        raise ApplicationHandlerStop

    def _admit(self, user_id: int) -> tuple[Verdict, Bucket]:
        now = self.deps.monotonic()
        if len(self._buckets) > MAX_BUCKETS:
            full = [u for u, b in self._buckets.items() if b.full(now, self.deps.flood)]
            for u in full:
                del self._buckets[u]
        bucket, verdict = admit(self._buckets.get(user_id), now, self.deps.flood)
        self._buckets[user_id] = bucket
        return verdict, bucket

    async def start(self, update: Update, context: Context) -> None:
        chat = update.effective_chat
        if chat is None:
            return
        lang = await self.chat.lang(update)
        language = lang if chat.type == ChatType.PRIVATE else None
        title = chat.title or chat.username or chat.full_name
        await self.deps.store.upsert_chat(chat.id, kind=chat.type, language=language, title=title)
        lines = [t(lang, "start.welcome")]
        current = await self._current(chat.id)
        if not current and await self.chat.may_change(update, context):
            defaults = [topic.id for topic in self.deps.rulebook().topics if topic.default]
            current = await self.deps.store.subscribe(chat.id, defaults) if defaults else []
            if current:
                lines.append(t(lang, "start.follows", names=self._names(current, lang)))
        lines.append(t(lang, "start.hint"))
        await self._topic_list(update, "\n".join(lines), current, lang)

    async def help(self, update: Update, context: Context) -> None:
        lang = await self.chat.lang(update)
        lines = [t(lang, "help.header")] + [f"/{c} – {escape(d)}" for c, d in menu(lang)]
        if self.chat.is_operator(update):
            lines += ["", t(lang, "help.operators")]
            lines += [f"/{c} – {escape(t(lang, f'menu.{c}'))}" for c in OPERATOR_COMMANDS]
        lines += ["", t(lang, "help.groups")]
        await reply(update, "\n".join(lines))

    async def topics(self, update: Update, context: Context) -> None:
        chat = update.effective_chat
        if chat is None:
            return
        lang = await self.chat.lang(update)
        current = await self._current(chat.id)
        await self._topic_list(update, t(lang, "topics.header"), current, lang)

    async def subscribe(self, update: Update, context: Context) -> None:
        await self._change(update, context, follow=True)

    async def unsubscribe(self, update: Update, context: Context) -> None:
        await self._change(update, context, follow=False)

    async def stop(self, update: Update, context: Context) -> None:
        chat = update.effective_chat
        if chat is None:
            return
        lang = await self.chat.lang(update)
        if not await self.chat.may_change(update, context):
            await reply(update, escape(t(lang, "group.admins_only")))
            return
        removed = await self.deps.store.unsubscribe_all(chat.id)
        await reply(update, t(lang, "stop.done", count=removed))

    def operator(self, name: str, action: Callable[[], Awaitable[str]] | None) -> Reply:
        """A handler for an operator command that runs ``action`` and shows its text."""

        async def handle(update: Update, context: Context) -> None:
            lang = await self.chat.lang(update)
            if not self.chat.is_operator(update):
                await reply(update, t(lang, "operator.only", name=name))
            elif action is None:
                await reply(update, t(lang, "unavailable", name=name))
            else:
                text = await action()
                await reply(update, f"<pre>{escape(clip(text, MAX_LIST_CHARS))}</pre>")

        return handle

    async def unknown(self, update: Update, context: Context) -> None:
        message, chat = update.effective_message, update.effective_chat
        if message is None or chat is None or not message.text:
            return
        if chat.type != ChatType.PRIVATE and not _addressed(update, context):
            return  # in a group, a bare unknown command is probably another bot's
        command = message.text.split()[0].partition("@")[0]
        lang = await self.chat.lang(update)
        await reply(update, t(lang, "unknown.command", command=escape(command)))

    async def hint(self, update: Update, context: Context) -> None:
        await reply(update, t(await self.chat.lang(update), "private.hint"))

    async def button(self, update: Update, context: Context) -> None:
        query, chat = update.callback_query, update.effective_chat
        if query is None or query.data is None or chat is None:
            return
        lang = await self.chat.lang(update)
        if not await self.chat.may_change(update, context):
            await query.answer(t(lang, "group.admins_only"), show_alert=True)
            return
        action, _, topic_id = query.data.partition(":")
        topic = self.deps.rulebook().topic(topic_id)
        if topic is None:
            await query.answer(t(lang, "button.gone"))
        elif action == "s":
            await self.deps.store.subscribe(chat.id, [topic.id])
            title = clip(topic_title(topic, lang), 150)
            await query.answer(t(lang, "button.following", title=title))
        else:
            await self.deps.store.unsubscribe(chat.id, [topic.id])
            title = clip(topic_title(topic, lang), 140)
            await query.answer(t(lang, "button.unfollowed", title=title))
        await self._redraw(query, await self._current(chat.id), lang)

    async def stale_button(self, update: Update, context: Context) -> None:
        """A button this version does not know (an old message): say so, never spin."""
        if update.callback_query is not None:
            await update.callback_query.answer(t(sender_language(update), "button.stale"))

    async def added(self, update: Update, context: Context) -> None:
        """The bot joined a group or was unblocked: remember the chat."""
        member = update.my_chat_member
        if member is None or member.new_chat_member.status in ("left", "kicked"):
            return
        chat = member.chat
        await self.deps.store.upsert_chat(chat.id, kind=chat.type, title=chat.title)

    async def error(self, update: object, context: Context) -> None:
        """Log a failed handler without the token; tell the user briefly, in their thread."""
        token = context.bot.token
        err = context.error
        trace = "".join(traceback.format_exception(err)) if err else "unknown error"
        log.error("chat command failed: %s", trace.replace(token, "[token]") if token else trace)
        if not isinstance(update, Update) or update.effective_chat is None:
            return
        message = update.effective_message
        thread = message.message_thread_id if message and message.is_topic_message else None
        try:
            await context.bot.send_message(
                update.effective_chat.id,
                t(sender_language(update), "error"),
                message_thread_id=thread,
            )
        except TelegramError as exc:
            log.warning("could not tell the chat about the failure: %s", type(exc).__name__)

    # helpers

    async def _current(self, chat_id: int) -> list[str]:
        """The chat's subscriptions to topics that exist now (a reload may remove topics)."""
        ids = {topic.id for topic in self.deps.rulebook().topics}
        return [i for i in await self.deps.store.subscriptions(chat_id) if i in ids]

    async def _change(self, update: Update, context: Context, *, follow: bool) -> None:
        chat = update.effective_chat
        if chat is None:
            return
        lang = await self.chat.lang(update)
        catalog = self.deps.rulebook()
        wanted = [w for arg in context.args or () for w in arg.replace(",", " ").split()]
        if not wanted:
            usage = "subscribe.usage" if follow else "unsubscribe.usage"
            await reply(update, t(lang, usage, valid=_valid_ids(catalog, lang)))
            return
        if not await self.chat.may_change(update, context):
            await reply(update, escape(t(lang, "group.admins_only")))
            return
        known, unknown = _resolve(catalog, wanted)
        if not follow and unknown:
            # A topic removed from the rules may still be subscribed: let it be unsubscribed.
            held = {_key(i): i for i in await self.deps.store.subscriptions(chat.id)}
            known += [held[_key(w)] for w in unknown if _key(w) in held]
            unknown = [w for w in unknown if _key(w) not in held]
        lines = []
        if unknown:
            names = ", ".join(f"<code>{escape(clip(u, 64))}</code>" for u in unknown[:20])
            lines.append(t(lang, "topic.unknown", names=names, valid=_valid_ids(catalog, lang)))
        if known:
            lines.append(await self._apply(chat.id, known, lang, follow=follow))
        await reply(update, "\n".join(lines))

    async def _apply(self, chat_id: int, ids: list[str], lang: str, *, follow: bool) -> str:
        store = self.deps.store
        changed = await (store.subscribe if follow else store.unsubscribe)(chat_id, ids)
        same = [i for i in ids if i not in changed]
        lines = []
        if changed:
            key = "follow.now" if follow else "unfollow.now"
            lines.append(t(lang, key, names=self._names(changed, lang)))
        if same:
            key = "follow.already" if follow else "unfollow.not"
            lines.append(t(lang, key, names=self._names(same, lang)))
        return "\n".join(lines)

    async def _topic_list(
        self, update: Update, header: str, current: Sequence[str], lang: str
    ) -> None:
        catalog = self.deps.rulebook()
        blocks = [_describe(topic, lang) for topic in catalog.topics]
        body = _clip_lines(blocks, MAX_LIST_CHARS - len(header), lang)
        text = "\n\n".join([header, body or t(lang, "topics.none")])
        await reply(update, text, _keyboard(catalog.topics, current, lang))

    async def _redraw(self, query: CallbackQuery, current: Sequence[str], lang: str) -> None:
        markup = _keyboard(self.deps.rulebook().topics, current, lang)
        try:
            await query.edit_message_reply_markup(markup)
        except BadRequest as exc:
            if "not modified" not in exc.message:
                raise

    def _names(self, ids: Sequence[str], lang: str) -> str:
        catalog = self.deps.rulebook()
        titles = [(topic_title(tp, lang) if (tp := catalog.topic(i)) else i) for i in ids]
        return ", ".join(f"<b>{escape(clip(title, 100))}</b>" for title in titles)


_OURS = frozenset(COMMANDS + OPERATOR_COMMANDS)


def _addressed(update: Update, context: Context) -> bool:
    """Whether a message is for this bot: anything in a private chat; in a group, a command
    addressed to it (``/cmd@this_bot``) or one of its own commands without an address."""
    message, chat = update.effective_message, update.effective_chat
    if message is None or chat is None or not message.text:
        return False
    if chat.type == ChatType.PRIVATE:
        return True
    if not message.text.startswith("/"):
        return False
    command, _, addressee = message.text.split()[0][1:].partition("@")
    if addressee:
        return addressee.casefold() == (context.bot.username or "").casefold()
    return command.casefold() in _OURS


async def _tell(update: Update, text: str) -> None:
    """A short plain-text answer: an alert on a button press, else a reply."""
    if update.callback_query is not None:
        await update.callback_query.answer(text, show_alert=True)
    else:
        await reply(update, escape(text))


def _describe(topic: Topic, lang: str) -> str:
    title = escape(clip(topic_title(topic, lang), 100))
    line = f"<b>{title}</b> – <code>{escape(topic.id)}</code>"
    description = topic_description(topic, lang)
    if description:
        line += f"\n{escape(clip(' '.join(description.split()), 160))}"
    return line


def _keyboard(topics: Sequence[Topic], current: Sequence[str], lang: str) -> InlineKeyboardMarkup:
    rows = []
    for topic in topics[:MAX_BUTTONS]:
        following = topic.id in current
        data = f"{'u' if following else 's'}:{topic.id}"
        if len(data.encode()) > 64:  # Telegram's callback_data limit; /subscribe still works
            continue
        label = f"{'✅' if following else '➕'} {clip(topic_title(topic, lang), 40)}"
        rows.append([InlineKeyboardButton(label, callback_data=data)])
    return InlineKeyboardMarkup(rows)


def _resolve(catalog: TopicCatalog, wanted: Sequence[str]) -> tuple[list[str], list[str]]:
    """(known topic ids, unknown words) for what a user typed, in order, without repeats."""
    by_key = {_key(topic.id): topic.id for topic in catalog.topics}
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


def _valid_ids(catalog: TopicCatalog, lang: str) -> str:
    ids = ", ".join(f"<code>{escape(tp.id)}</code>" for tp in catalog.topics[:MAX_BUTTONS])
    return t(lang, "topics.valid", ids=ids) if ids else t(lang, "topics.none")


def _clip_lines(blocks: Sequence[str], limit: int, lang: str) -> str:
    shown: list[str] = []
    used = 0
    for block in blocks:
        if used + len(block) + 2 > limit:
            shown.append(t(lang, "topics.more", n=len(blocks) - len(shown)))
            break
        shown.append(block)
        used += len(block) + 2
    return "\n\n".join(shown)

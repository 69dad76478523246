"""Preference commands: ``/recent [n]``, ``/timezone Area/City``, ``/mute DURATION``,
``/unmute``, ``/digest off | hourly | daily HH:MM`` and ``/language en | zh-hans | zh-hant``.

Each command without arguments shows the current setting (with buttons for mute, digest and
language); buttons carry ``l:LANG``, ``m:DURATION`` or ``d:SETTING`` and update their message
in place. In groups only administrators change settings; anyone may read ``/recent``.

The commands store settings (``PrefsStore``) and answer. Holding muted alerts and sending
digests is the delivery loop's job; what it must do with the columns is in
``bot.store.prefs``. Time zone names are checked against the system's IANA database, leniently:
``asia/hong_kong``, ``Hong Kong`` and ``hong_kong`` all mean ``Asia/Hong_Kong``.
"""

from __future__ import annotations

import functools
import re
import zoneinfo
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from html import escape
from typing import Any
from urllib.parse import urlsplit

from telegram import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ChatType, ParseMode
from telegram.error import BadRequest

from bot.model import Story
from bot.telegram.chat import Chat, Context, Prefs, PrefsStore, clip, reply, set_chat_menu
from bot.telegram.i18n import LANGUAGES, NAMES, parse_language, t, when
from bot.telegram.options import (
    DEFAULT_DAILY,
    HOURLY,
    OptionError,
    daily_clock,
    digest_times,
    parse_count,
    parse_digest,
    parse_mute,
)

Handler = Callable[[Update, Context], Coroutine[Any, Any, None]]

MUTE_BUTTONS = ("1h", "8h", "1d")
DIGEST_BUTTONS = ("off", HOURLY, f"daily {DEFAULT_DAILY}")
TITLE_CHARS = 120
MAX_TAGS = 2
_NOT_TAG_CHAR = re.compile(r"\W")


@dataclass(frozen=True, slots=True)
class _Ask:
    """A preference command or button press, with what every handler needs."""

    chat_id: int
    kind: str
    prefs: Prefs | None
    lang: str
    query: CallbackQuery | None = None
    value: str = ""


@dataclass
class Tuning:
    chat: Chat

    def commands(self) -> list[tuple[str, Handler]]:
        return [
            ("recent", self.recent),
            ("timezone", self.timezone),
            ("mute", self.mute),
            ("unmute", self.unmute),
            ("digest", self.digest),
            ("language", self.language),
        ]

    def buttons(self) -> list[tuple[str, Handler]]:
        return [
            (r"^l:", self.language_button),
            (r"^m:", self.mute_button),
            (r"^d:", self.digest_button),
        ]

    @property
    def store(self) -> PrefsStore:
        if self.chat.deps.prefs is None:  # pragma: no cover - _ready checks first
            raise RuntimeError("no preference store")
        return self.chat.deps.prefs

    async def recent(self, update: Update, context: Context) -> None:
        ask = await self._ready(update, "recent")
        if ask is None:
            return
        try:
            count = parse_count(context.args or ())
        except OptionError as e:
            await reply(update, t(ask.lang, e.key, **e.values))
            return
        stories = await self.store.recent(ask.chat_id, count)
        if stories:
            _, tz = self.chat.zone(ask.prefs)
            lines = [t(ask.lang, "recent.header"), *_listing(stories, ask.lang, tz)]
            await reply(update, "\n".join(lines))
        elif await self.chat.deps.store.subscriptions(ask.chat_id):
            await reply(update, t(ask.lang, "recent.none"))
        else:
            await reply(update, t(ask.lang, "recent.no_topics"))

    async def timezone(self, update: Update, context: Context) -> None:
        ask = await self._ready(update, "timezone")
        if ask is None:
            return
        lang = ask.lang
        if not context.args:
            name, tz = self.chat.zone(ask.prefs)
            await reply(update, t(lang, "timezone.current", tz=name, now=self._now(tz, lang)))
            return
        typed = " ".join(context.args)
        resolved = resolve_timezone(typed)
        if resolved is None:
            await reply(update, t(lang, "timezone.unknown", name=escape(clip(typed, 64))))
        elif await self._may_change(update, context, lang):
            await self.store.set_timezone(ask.chat_id, resolved, kind=ask.kind)
            now = self._now(zoneinfo.ZoneInfo(resolved), lang)
            await reply(update, t(lang, "timezone.set", tz=resolved, now=now))

    async def mute(self, update: Update, context: Context) -> None:
        ask = await self._ready(update, "mute")
        if ask is None:
            return
        if not context.args:
            buttons = _choices("m", MUTE_BUTTONS, MUTE_BUTTONS)
            await reply(update, t(ask.lang, "mute.usage"), buttons)
            return
        try:
            length = parse_mute(context.args)
        except OptionError as e:
            await reply(update, t(ask.lang, e.key, **e.values))
            return
        if await self._may_change(update, context, ask.lang):
            await reply(update, await self._mute(ask, self.chat.deps.clock() + length))

    async def mute_button(self, update: Update, context: Context) -> None:
        ask = await self._pressed(update, context)
        if ask is None or ask.query is None:
            return
        try:
            length = parse_mute([ask.value])
        except OptionError:
            await ask.query.answer(t(ask.lang, "button.stale"))
            return
        until = self.chat.deps.clock() + length
        text = await self._mute(ask, until)
        name, tz = self.chat.zone(ask.prefs)
        shown = f"{when(until.astimezone(tz), ask.lang)} {name}"
        await ask.query.answer(t(ask.lang, "mute.saved", until=shown))
        await _edit(ask.query, text, None)

    async def _mute(self, ask: _Ask, until: datetime) -> str:
        await self.store.mute(ask.chat_id, until, kind=ask.kind)
        name, tz = self.chat.zone(ask.prefs)
        return t(ask.lang, "mute.set", until=when(until.astimezone(tz), ask.lang), tz=name)

    async def unmute(self, update: Update, context: Context) -> None:
        ask = await self._ready(update, "unmute")
        if ask is None:
            return
        if await self._may_change(update, context, ask.lang):
            released = await self.store.unmute(ask.chat_id, self.chat.deps.clock())
            await reply(update, t(ask.lang, "unmute.done" if released else "unmute.none"))

    async def digest(self, update: Update, context: Context) -> None:
        ask = await self._ready(update, "digest")
        if ask is None:
            return
        if not context.args:
            current = ask.prefs.digest if ask.prefs else None
            text = f"{self._describe_digest(current, ask)}\n{t(ask.lang, 'digest.choose')}"
            await reply(update, text, _digest_keyboard(current, ask.lang))
            return
        try:
            setting = parse_digest(context.args)
        except OptionError as e:
            await reply(update, t(ask.lang, e.key, **e.values))
            return
        if await self._may_change(update, context, ask.lang):
            await self.store.set_digest(ask.chat_id, setting, kind=ask.kind)
            await reply(update, self._describe_digest(setting, ask))

    async def digest_button(self, update: Update, context: Context) -> None:
        ask = await self._pressed(update, context)
        if ask is None or ask.query is None:
            return
        try:
            setting = parse_digest(ask.value.split())
        except OptionError:
            await ask.query.answer(t(ask.lang, "button.stale"))
            return
        await self.store.set_digest(ask.chat_id, setting, kind=ask.kind)
        await ask.query.answer(t(ask.lang, "digest.saved"))
        text = f"{self._describe_digest(setting, ask)}\n{t(ask.lang, 'digest.choose')}"
        await _edit(ask.query, text, _digest_keyboard(setting, ask.lang))

    async def language(self, update: Update, context: Context) -> None:
        ask = await self._ready(update, "language")
        if ask is None:
            return
        lang = ask.lang
        if not context.args:
            text = t(lang, "language.current", name=NAMES[lang])
            await reply(update, text, _language_keyboard(lang))
            return
        chosen = parse_language(" ".join(context.args))
        if chosen is None:
            await reply(update, t(lang, "language.usage"), _language_keyboard(lang))
        elif await self._may_change(update, context, lang):
            await self._set_language(update, context, ask, chosen)
            await reply(update, t(chosen, "language.set"))

    async def language_button(self, update: Update, context: Context) -> None:
        ask = await self._pressed(update, context)
        if ask is None or ask.query is None:
            return
        chosen = ask.value
        if chosen not in LANGUAGES:
            await ask.query.answer(t(ask.lang, "button.stale"))
            return
        await self._set_language(update, context, ask, chosen)
        await ask.query.answer(t(chosen, "language.set"))
        text = t(chosen, "language.current", name=NAMES[chosen])
        await _edit(ask.query, text, _language_keyboard(chosen))

    async def _set_language(self, update: Update, context: Context, ask: _Ask, lang: str) -> None:
        """Store the chat's language and give the chat a command menu in it."""
        await self.store.set_language(ask.chat_id, lang, kind=ask.kind)
        operator = ask.kind == ChatType.PRIVATE and self.chat.is_operator(update)
        await set_chat_menu(context.bot, ask.chat_id, lang, operator=operator)

    # helpers

    async def _ready(self, update: Update, name: str) -> _Ask | None:
        """The command's chat, prefs and language; None after saying it is unavailable."""
        chat = update.effective_chat
        if chat is None:
            return None
        prefs = await self.chat.prefs(update)
        lang = await self.chat.lang(update, prefs)
        if self.chat.deps.prefs is None:
            await reply(update, t(lang, "unavailable", name=name))
            return None
        return _Ask(chat.id, chat.type, prefs, lang)

    async def _pressed(self, update: Update, context: Context) -> _Ask | None:
        """A settings button press the user may make, with the button's value."""
        query, chat = update.callback_query, update.effective_chat
        if query is None or query.data is None or chat is None:
            return None
        prefs = await self.chat.prefs(update)
        lang = await self.chat.lang(update, prefs)
        if self.chat.deps.prefs is None:
            await query.answer(t(lang, "button.stale"))
            return None
        if not await self.chat.may_change(update, context):
            await query.answer(t(lang, "group.admins_only"), show_alert=True)
            return None
        value = query.data.partition(":")[2]
        return _Ask(chat.id, chat.type, prefs, lang, query, value)

    async def _may_change(self, update: Update, context: Context, lang: str) -> bool:
        if await self.chat.may_change(update, context):
            return True
        await reply(update, escape(t(lang, "group.admins_only")))
        return False

    def _now(self, tz: tzinfo, lang: str) -> str:
        return when(self.chat.deps.clock().astimezone(tz), lang)

    def _describe_digest(self, setting: str | None, ask: _Ask) -> str:
        """What a digest setting means for this chat, with the next digest time."""
        lang = ask.lang
        name, tz = self.chat.zone(ask.prefs)
        clock = daily_clock(setting) if setting else None
        if setting != HOURLY and clock is None:
            return t(lang, "digest.off")
        _, upcoming = digest_times(setting or HOURLY, tz, self.chat.deps.clock())
        next_time = when(upcoming.astimezone(tz), lang)
        if clock is None:
            return t(lang, "digest.hourly", tz=name, next=next_time)
        return t(lang, "digest.daily", time=f"{clock:%H:%M}", tz=name, next=next_time)


@functools.cache
def _zones() -> dict[str, str]:
    return {name.casefold(): name for name in zoneinfo.available_timezones()}


def resolve_timezone(typed: str) -> str | None:
    """The IANA name a user meant: exact, case-insensitive, or a unique city name."""
    key = "_".join(typed.split()).casefold()
    zones = _zones()
    if key in zones:
        return zones[key]
    cities = sorted(name for k, name in zones.items() if "/" in k and k.rsplit("/", 1)[1] == key)
    return cities[0] if len(cities) == 1 else None


def _listing(stories: Sequence[Story], lang: str, tz: tzinfo) -> list[str]:
    """One compact line per story: number, linked title, time, hashtags."""
    lines = []
    for number, story in enumerate(stories, 1):
        title = escape(clip(" ".join(story.title.split()) or story.link, TITLE_CHARS))
        if urlsplit(story.link).scheme in ("http", "https"):
            title = f'<a href="{escape(story.link, quote=True)}">{title}</a>'
        parts = [f"{number}. {title}"]
        if story.published is not None:
            parts.append(when(story.published.astimezone(tz), lang))
        tags = " ".join("#" + _NOT_TAG_CHAR.sub("_", tid) for tid in story.topics[:MAX_TAGS])
        if tags:
            parts.append(escape(tags))
        lines.append(" · ".join(parts))
    return lines


def _choices(prefix: str, values: Sequence[str], labels: Sequence[str]) -> InlineKeyboardMarkup:
    row = [
        InlineKeyboardButton(label, callback_data=f"{prefix}:{value}")
        for value, label in zip(values, labels, strict=True)
    ]
    return InlineKeyboardMarkup([row])


def _digest_keyboard(current: str | None, lang: str) -> InlineKeyboardMarkup:
    labels = (
        t(lang, "digest.button.off"),
        t(lang, "digest.button.hourly"),
        t(lang, "digest.button.daily", time=DEFAULT_DAILY),
    )
    chosen = current or "off"
    marked = [
        f"✅ {label}" if value == chosen else label
        for value, label in zip(DIGEST_BUTTONS, labels, strict=True)
    ]
    return _choices("d", DIGEST_BUTTONS, marked)


def _language_keyboard(current: str) -> InlineKeyboardMarkup:
    labels = [f"✅ {NAMES[lang]}" if lang == current else NAMES[lang] for lang in LANGUAGES]
    return _choices("l", LANGUAGES, labels)


async def _edit(query: CallbackQuery, text: str, markup: InlineKeyboardMarkup | None) -> None:
    """Replace the pressed message's text and buttons; pressing twice changes nothing."""
    try:
        await query.edit_message_text(text, parse_mode=ParseMode.HTML, reply_markup=markup)
    except BadRequest as exc:
        if "not modified" not in exc.message:
            raise

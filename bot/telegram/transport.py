"""Sending to Telegram: the only module that sends through python-telegram-bot.

``TelegramTransport.send(chat_id, html)`` is the narrow method the delivery loop needs, with
``edit(chat_id, message_id, html)`` to list a story's later sources in a sent alert.
Every PTB error is translated into ``DeliveryError`` here, caught in this order because
``BadRequest`` and ``TimedOut`` subclass ``NetworkError``:

    RetryAfter    -> retry_after=seconds               (flood control: wait, then retry)
    Forbidden     -> permanent, chat_gone              (blocked, kicked: deactivate the chat)
    ChatMigrated  -> permanent, migrated_to=new id     (group became a supergroup)
    BadRequest    -> permanent, with Telegram's reason (chat not found, bad HTML: dead row)
    InvalidToken  -> bot_wide, retry_after=300         (revoked token: hold all sends, lose none)
    NetworkError  -> transient                         (5xx, timeouts, dropped connections)

No message or log line here contains the bot token: PTB's ``InvalidToken`` raised by
``Bot.initialize`` quotes it, so it is replaced, never chained into a traceback. Pacing is not
done here (``decide.py`` owns it) and nothing is retried here (the outbox owns retries).

``ConsoleTransport`` prints alerts instead, for running without a token. The polling helpers
(``start_polling``/``stop_polling``, ``open_application``/``close_application``) exist so the
composition root never imports python-telegram-bot itself.
"""

from __future__ import annotations

import html
import logging
import os
import re
import warnings
from datetime import timedelta
from typing import Any, TextIO

from telegram import LinkPreviewOptions, Update
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
)
from telegram.ext import Application, ApplicationBuilder
from telegram.warnings import PTBDeprecationWarning

from bot.errors import ConfigError, DeliveryError

log = logging.getLogger(__name__)

Bot = Any  # telegram.Bot; kept loose so tests and the app can pass ExtBot subclasses

CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 20.0
WRITE_TIMEOUT = 20.0
POOL_TIMEOUT = 10.0
CONCURRENT_UPDATES = 8  # command handlers in flight; each chat's commands are cheap and few
ALLOWED_UPDATES = (Update.MESSAGE, Update.CALLBACK_QUERY, Update.MY_CHAT_MEMBER)

_TAG = re.compile(r"<[^>]*>")
_ANCHOR = re.compile(r'<a href="([^"]*)">(.*?)</a>', re.DOTALL)


def build_application(token: str, api_url: str) -> Application:  # type: ignore[type-arg]
    """A PTB application talking to ``{api_url}/bot{token}/{method}``; not yet initialised.

    No job queue (APScheduler in ``scheduler.py`` keeps time) and no rate limiter (pacing
    is ours). The updater is kept for long polling.
    """
    # PTB 22 warns on every RetryAfter unless this opt-in to timedelta values is set; under
    # pytest's filterwarnings=error that warning would replace the RetryAfter itself.
    os.environ.setdefault("PTB_TIMEDELTA", "true")
    root = api_url.rstrip("/")
    return (
        ApplicationBuilder()
        .token(token)
        .base_url(f"{root}/bot")
        .base_file_url(f"{root}/file/bot")
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(READ_TIMEOUT)
        .write_timeout(WRITE_TIMEOUT)
        .pool_timeout(POOL_TIMEOUT)
        .get_updates_connect_timeout(CONNECT_TIMEOUT)
        .get_updates_read_timeout(READ_TIMEOUT)  # PTB adds the long-poll timeout to this
        .get_updates_pool_timeout(POOL_TIMEOUT)
        .job_queue(None)
        .concurrent_updates(CONCURRENT_UPDATES)
        .build()
    )


class TelegramTransport:
    """Sends alerts with a PTB ``Bot``; every failure becomes a ``DeliveryError``."""

    def __init__(self, bot: Bot) -> None:
        self._bot = bot

    async def send(self, chat_id: int, html: str, *, thread_id: int | None = None) -> int:
        """Send ``html`` (parse mode HTML, no link preview); Telegram's message id."""
        try:
            message = await self._bot.send_message(
                chat_id=chat_id,
                text=html,
                parse_mode=ParseMode.HTML,
                link_preview_options=LinkPreviewOptions(is_disabled=True),
                message_thread_id=thread_id,
            )
        except TelegramError as exc:
            raise _delivery_error(exc, chat_id, self._bot.token) from _chain(exc)
        return int(message.message_id)

    async def edit(self, chat_id: int, message_id: int, html: str) -> None:
        """Replace the text of our message ``message_id`` (same parse mode and options as
        ``send``). Failures are ``DeliveryError`` as for ``send``; Telegram's "message is
        not modified" counts as done."""
        try:
            await self._bot.edit_message_text(
                text=html,
                chat_id=chat_id,
                message_id=message_id,
                parse_mode=ParseMode.HTML,
                link_preview_options=LinkPreviewOptions(is_disabled=True),
            )
        except BadRequest as exc:
            if "not modified" in exc.message.lower():
                return
            raise _delivery_error(exc, chat_id, self._bot.token) from exc
        except TelegramError as exc:
            raise _delivery_error(exc, chat_id, self._bot.token) from _chain(exc)


# A revoked token or a wrong api_url is an operator's to fix: retry every 5 minutes meanwhile.
BOT_REFUSED_RETRY = 300.0


def _delivery_error(exc: TelegramError, chat_id: int, token: str) -> DeliveryError:
    """The DeliveryError for a PTB error; the order of the checks matters (see module doc)."""
    where = f"chat {chat_id}"
    reason = _redact(exc.message, token)
    if isinstance(exc, RetryAfter):
        seconds = retry_after_seconds(exc)
        return DeliveryError(f"{where}: flood control, retry in {seconds:g}s", retry_after=seconds)
    if isinstance(exc, Forbidden):
        return DeliveryError(f"{where}: {reason}", permanent=True, chat_gone=True)
    if isinstance(exc, ChatMigrated):
        new_id = int(exc.new_chat_id)
        return DeliveryError(
            f"{where}: group migrated to supergroup {new_id}", permanent=True, migrated_to=new_id
        )
    if isinstance(exc, BadRequest):
        return DeliveryError(f"{where}: bad request: {reason}", permanent=True)
    if isinstance(exc, InvalidToken):
        return DeliveryError(
            f"{where}: Telegram rejected the bot token (check telegram.token)",
            bot_wide=True,
            retry_after=BOT_REFUSED_RETRY,
        )
    if isinstance(exc, NetworkError):
        return DeliveryError(f"{where}: network error: {reason}")
    return DeliveryError(f"{where}: {type(exc).__name__}: {reason}")


def _chain(exc: TelegramError) -> TelegramError | None:
    """The cause to chain, or None when the original may quote the token."""
    return None if isinstance(exc, InvalidToken) else exc


def retry_after_seconds(exc: RetryAfter) -> float:
    """RetryAfter's wait in seconds, whether PTB hands it out as int or timedelta."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value: int | float | timedelta = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def _redact(text: str, token: str) -> str:
    return text.replace(token, "[token]") if token else text


class ConsoleTransport:
    """Writes alerts as plain text to ``stream``: running without a token shows what would go."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._last_id = 0

    async def send(self, chat_id: int, html: str, *, thread_id: int | None = None) -> int:
        self._last_id += 1
        where = f"chat {chat_id}" + (f" thread {thread_id}" if thread_id is not None else "")
        self._stream.write(f"--- alert #{self._last_id} to {where}\n{html_to_plain(html)}\n\n")
        self._stream.flush()
        return self._last_id

    async def edit(self, chat_id: int, message_id: int, html: str) -> None:
        self._stream.write(
            f"--- alert #{message_id} to chat {chat_id} edited\n{html_to_plain(html)}\n\n"
        )
        self._stream.flush()


def html_to_plain(markup: str) -> str:
    """Our alert HTML as readable text: a link's URL goes on the line after its title."""
    linked = _ANCHOR.sub(lambda m: f"{m.group(2)}\n{m.group(1)}", markup)
    # Text is escaped, so every "<" left is one of our tags.
    return html.unescape(_TAG.sub("", linked)).strip()


async def open_application(application: Application) -> None:  # type: ignore[type-arg]
    """Initialise ``application`` (calls getMe); errors say what is wrong without the token.

    On failure the HTTP clients it opened are closed again before the error is raised.
    """
    try:
        await application.initialize()
    except InvalidToken:
        await application.bot.shutdown()
        # PTB's message quotes the token: never chain it into a traceback.
        raise ConfigError("Telegram rejected the bot token", key="telegram.token") from None
    except TelegramError as exc:
        await application.bot.shutdown()
        reason = _redact(exc.message, application.bot.token)
        raise DeliveryError(f"cannot reach the Telegram Bot API: {reason}") from exc


async def close_application(application: Application) -> None:  # type: ignore[type-arg]
    """Release what ``open_application`` opened; safe after a failure or a second time."""
    await application.shutdown()
    await application.bot.shutdown()  # a no-op unless initialisation stopped half-way


async def start_polling(
    application: Application,  # type: ignore[type-arg]
    *,
    poll_timeout: float = 10.0,
) -> None:
    """Open the application, start its handlers and long-poll for updates in the background.

    Pending updates are kept (a restart must not lose a /subscribe). ``poll_timeout`` is the
    long-poll wait per getUpdates request.
    """
    await open_application(application)
    await application.start()
    if application.updater is None:
        raise ConfigError("the Telegram application was built without an updater")
    await application.updater.start_polling(
        timeout=timedelta(seconds=poll_timeout),
        drop_pending_updates=False,
        allowed_updates=list(ALLOWED_UPDATES),
    )


async def stop_polling(application: Application) -> None:  # type: ignore[type-arg]
    """Stop polling, let running handlers finish, then shut down; each step only if needed."""
    if application.updater is not None and application.updater.running:
        await application.updater.stop()
    if application.running:
        await application.stop()
    await close_application(application)

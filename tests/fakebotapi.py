"""A fake Telegram Bot API server on 127.0.0.1, for tests of the real python-telegram-bot.

It speaks the Bot API's shape: ``POST /bot{token}/{method}`` with JSON or form data (PTB 22
posts form fields, nested objects JSON-encoded), answering ``{"ok": true, "result": ...}`` or
``{"ok": false, "error_code": N, "description": "...", "parameters": {...}}``. A wrong token
gets 401 (well-formed) or 404 (malformed), as Telegram answers.

Use it inside the test's event loop::

    async with FakeBotApi(TOKEN) as api:
        bot = build_application(TOKEN, api.api_url).bot

or in a background thread, for a subprocess under test::

    with FakeBotApi(TOKEN).start_in_thread() as api:
        subprocess.run([... "--config", ...])   # api.api_url
        assert api.sent

Test API: ``push_message``/``push_callback``/``push_update`` queue updates for ``getUpdates``
(long-polled); ``sent`` records each delivered ``sendMessage``; ``inject(method, *faults,
chat_id=...)`` queues failures (``Fault.retry_after(3)``, ``Fault.blocked()``, ...) consumed
one per matching request; ``set_admins(chat_id, ids)`` answers ``getChatMember``.

``sendMessage`` with ``parse_mode=HTML`` is checked like Telegram does: unsupported tags,
unbalanced tags or a bare ``<``/``&`` give 400 "can't parse entities", more than 4096
characters after parsing gives 400 "message is too long", more than 100 entities 400 "too
many entities".

``FakeBotApi(token, limits=True)`` enforces Telegram's flood limits on ``sendMessage`` and
``editMessageText`` at request arrival: 30 per second overall, 1 per second per private chat
(positive id), 20 per minute per group or channel. A request over a limit is answered 429
with ``parameters.retry_after`` (whole seconds, as Telegram) and recorded in ``violations``;
refused requests do not count against the windows.
"""

from __future__ import annotations

import asyncio
import html
import itertools
import json
import re
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Self

from aiohttp import web

JSON = dict[str, Any]
_TOKEN_SHAPE = re.compile(r"^\d+:[A-Za-z0-9_-]{10,}$")
# Form fields that are plain strings even when they look like JSON ("123", "true").
_STRING_FIELDS = frozenset(
    "text caption parse_mode callback_query_id inline_message_id description short_description "
    "name language_code url query title message emoji secret_token".split()
)
_TAGS = frozenset(
    "b strong i em u ins s strike del span tg-spoiler a code pre blockquote tg-emoji".split()
)
_HTML_TOKEN = re.compile(
    r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)([^<>]*)>|&(#[0-9]+|#x[0-9a-fA-F]+|lt|gt|amp|quot);|[<>&]"
)
MAX_TEXT = 4096
MAX_ENTITIES = 100
PACED_METHODS = frozenset({"sendmessage", "editmessagetext"})


@dataclass(frozen=True)
class Limits:
    """Telegram's flood limits: (count, seconds) per scope."""

    overall: tuple[int, float] = (30, 1.0)
    private: tuple[int, float] = (1, 1.0)
    group: tuple[int, float] = (20, 60.0)


@dataclass(frozen=True)
class Violation:
    """A request the limits refused: which scope, which chat, when (time.monotonic())."""

    scope: str
    chat_id: int | str
    method: str
    at: float


@dataclass(frozen=True)
class Fault:
    """One injected answer: an error status, a dropped connection, and/or a delay first."""

    status: int = 0
    description: str = ""
    parameters: JSON | None = None
    drop: bool = False
    delay: float = 0.0

    @classmethod
    def retry_after(cls, seconds: int) -> Fault:
        return cls(429, f"Too Many Requests: retry after {seconds}", {"retry_after": seconds})

    @classmethod
    def server_error(cls, status: int = 500) -> Fault:
        return cls(status, "Internal Server Error" if status == 500 else f"Error {status}")

    @classmethod
    def bad_gateway(cls) -> Fault:
        return cls(502, "Bad Gateway")

    @classmethod
    def blocked(cls) -> Fault:
        return cls(403, "Forbidden: bot was blocked by the user")

    @classmethod
    def kicked(cls) -> Fault:
        return cls(403, "Forbidden: bot was kicked from the group chat")

    @classmethod
    def chat_not_found(cls) -> Fault:
        return cls(400, "Bad Request: chat not found")

    @classmethod
    def bad_request(cls, reason: str) -> Fault:
        return cls(400, f"Bad Request: {reason}")

    @classmethod
    def migrated(cls, new_chat_id: int) -> Fault:
        return cls(
            400,
            "Bad Request: group chat was upgraded to a supergroup chat",
            {"migrate_to_chat_id": new_chat_id},
        )

    @classmethod
    def dropped(cls) -> Fault:
        return cls(drop=True)

    @classmethod
    def slow(cls, seconds: float) -> Fault:
        """Answer normally, after ``seconds``."""
        return cls(delay=seconds)


@dataclass(frozen=True)
class Call:
    """One request as the server saw it (``at`` is time.monotonic())."""

    method: str
    params: JSON
    at: float


@dataclass(frozen=True)
class Sent:
    """One delivered sendMessage. ``visible`` is the text after entity parsing."""

    chat_id: int | str
    text: str
    parse_mode: str | None
    message_thread_id: int | None
    reply_markup: JSON | None
    message_id: int
    visible: str
    entities: int
    params: JSON
    at: float


class ApiError(Exception):
    def __init__(self, status: int, description: str, parameters: JSON | None = None):
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters


class FakeBotApi:
    """The fake server; see the module docstring."""

    def __init__(
        self,
        token: str,
        *,
        username: str = "newsbot_test_bot",
        limits: Limits | bool = False,
    ) -> None:
        self.token = token
        self.limits: Limits | None = Limits() if limits is True else (limits or None)
        self.violations: list[Violation] = []
        self._windows: dict[object, deque[float]] = {}
        head = token.split(":", 1)[0]
        self.bot_user: JSON = {
            "id": int(head) if head.isdigit() else 1,
            "is_bot": True,
            "first_name": "newsbot test",
            "username": username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }
        self.calls: list[Call] = []
        self.sent: list[Sent] = []
        self.edits: list[Call] = []
        self.callback_answers: list[JSON] = []
        self.commands: list[JSON] = []
        self.bad_tokens = 0
        self.port = 0
        self._lock = threading.RLock()
        self._updates: list[JSON] = []
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1)
        self._callback_ids = itertools.count(1)
        self._messages: dict[tuple[int | str, int], JSON] = {}
        self._chats: dict[int | str, JSON] = {}
        self._faults: dict[tuple[str, int | str | None], deque[Fault]] = {}
        self._admins: dict[int | str, set[int]] = {}
        self._owners: dict[int | str, int] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._closing = False
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._stop_requested: asyncio.Event | None = None
        self._methods: dict[str, Callable[[JSON], Awaitable[Any]]] = {
            "getme": self._get_me,
            "sendmessage": self._send_message,
            "editmessagetext": self._edit_text,
            "editmessagereplymarkup": self._edit_markup,
            "answercallbackquery": self._answer_callback,
            "setmycommands": self._set_commands,
            "getmycommands": self._get_commands,
            "deletewebhook": _true,
            "getwebhookinfo": _webhook_info,
            "getchatmember": self._get_chat_member,
            "getchatadministrators": self._get_chat_administrators,
            "getupdates": self._get_updates,
            "close": _true,
            "logout": _true,
            "sendchataction": _true,
            "deletemessage": _true,
        }

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # --- running -----------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self._start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._stop()

    def start_in_thread(self) -> Self:
        """Serve from a background thread with its own loop; ``stop()`` or ``with`` ends it."""
        started = threading.Event()
        failure: list[BaseException] = []

        async def serve() -> None:
            try:
                await self._start()
            except BaseException as exc:
                failure.append(exc)
                started.set()
                return
            self._stop_requested = asyncio.Event()
            started.set()
            await self._stop_requested.wait()
            await self._stop()

        self._thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
        self._thread.start()
        started.wait(10)
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        if self._thread is None or self._loop is None or self._stop_requested is None:
            return
        self._loop.call_soon_threadsafe(self._stop_requested.set)
        self._thread.join(10)
        self._thread = None

    def __enter__(self) -> Self:
        return self if self._thread else self.start_in_thread()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def _start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def _stop(self) -> None:
        self._closing = True
        self._notify()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def _notify(self) -> None:
        """Wake long-polling getUpdates requests; call in the server's loop."""
        if self._wake is not None:
            self._wake.set()
            self._wake = asyncio.Event()

    def _notify_threadsafe(self) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._notify)

    # --- test API ----------------------------------------------------------------------

    def push_update(self, update: JSON) -> int:
        """Queue a raw update (its update_id is assigned here); returns the update_id."""
        with self._lock:
            update_id = next(self._update_ids)
            self._updates.append({**update, "update_id": update_id})
        self._notify_threadsafe()
        return update_id

    def push_message(
        self,
        chat_id: int,
        text: str,
        *,
        user_id: int,
        chat_type: str = "private",
        language_code: str | None = "en",
        first_name: str = "Tess",
        chat_title: str | None = None,
        message_thread_id: int | None = None,
        sender_chat_id: int | None = None,
    ) -> int:
        """Queue a user's text message (a command gets its bot_command entity)."""
        chat = self._chat(chat_id, chat_type, chat_title, first_name)
        user: JSON = {"id": user_id, "is_bot": False, "first_name": first_name}
        if language_code:
            user["language_code"] = language_code
        message: JSON = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": chat,
            "from": user,
            "text": text,
        }
        if text.startswith("/"):
            length = len(text.split()[0].encode("utf-16-le")) // 2
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": length}]
        if message_thread_id is not None:
            message |= {"message_thread_id": message_thread_id, "is_topic_message": True}
        if sender_chat_id is not None:
            message["sender_chat"] = self._chat(sender_chat_id, chat_type, chat_title, first_name)
        return self.push_update({"message": message})

    def push_callback(
        self,
        chat_id: int,
        message_id: int,
        data: str,
        *,
        user_id: int,
        language_code: str | None = "en",
        first_name: str = "Tess",
    ) -> str:
        """Queue a button press on the bot's message ``message_id``; returns the query id."""
        with self._lock:
            message = self._messages.get((chat_id, message_id)) or {
                "message_id": message_id,
                "date": int(time.time()),
                "chat": self._chat(chat_id, "private", None, first_name),
                "from": self.bot_user,
                "text": "(message)",
            }
            query_id = str(next(self._callback_ids))
        user: JSON = {"id": user_id, "is_bot": False, "first_name": first_name}
        if language_code:
            user["language_code"] = language_code
        query = {"id": query_id, "from": user, "chat_instance": f"ci{chat_id}", "data": data}
        self.push_update({"callback_query": {**query, "message": message}})
        return query_id

    def set_admins(self, chat_id: int, user_ids: set[int], *, owner: int | None = None) -> None:
        """Who getChatMember calls an administrator (and owner) in ``chat_id``."""
        with self._lock:
            self._admins[chat_id] = set(user_ids)
            if owner is not None:
                self._owners[chat_id] = owner

    def inject(self, method: str, *faults: Fault, chat_id: int | None = None) -> None:
        """Queue ``faults`` for ``method`` (to ``chat_id``, or any chat); one per request."""
        with self._lock:
            self._faults.setdefault((method.lower(), chat_id), deque()).extend(faults)

    def requests(self, method: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method.lower() == method.lower()]

    def pending_faults(self) -> int:
        with self._lock:
            return sum(len(q) for q in self._faults.values())

    def message(self, chat_id: int, message_id: int) -> JSON | None:
        """The bot's message as it stands now (after edits)."""
        with self._lock:
            return self._messages.get((chat_id, message_id))

    async def wait_for(
        self,
        predicate: Callable[[], bool],
        timeout: float = 10.0,  # noqa: ASYNC109 - a deadline for polling a condition
        what: str = "condition",
    ) -> None:
        """Poll ``predicate`` until it holds; TimeoutError names ``what`` and what was sent."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                texts = [s.visible[:80] for s in self.sent]
                raise TimeoutError(f"fake Bot API: no {what} within {timeout}s; sent: {texts}")
            await asyncio.sleep(0.01)

    async def wait_for_sent(self, n: int, timeout: float = 10.0) -> list[Sent]:  # noqa: ASYNC109
        """Wait until at least ``n`` messages were sent; returns them all."""
        await self.wait_for(lambda: len(self.sent) >= n, timeout, f"{n} sent messages")
        return list(self.sent)

    def wait_for_sent_blocking(self, n: int, timeout: float = 10.0) -> list[Sent]:
        """``wait_for_sent`` for synchronous tests (the server runs in its thread)."""
        deadline = time.monotonic() + timeout
        while len(self.sent) < n:
            if time.monotonic() > deadline:
                raise TimeoutError(f"fake Bot API: {len(self.sent)} of {n} messages sent")
            time.sleep(0.01)
        return list(self.sent)

    # --- HTTP --------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        token, method = request.match_info["token"], request.match_info["method"]
        if token != self.token:
            self.bad_tokens += 1
            if _TOKEN_SHAPE.match(token):
                return _error(401, "Unauthorized")
            return _error(404, "Not Found")
        params = await _read_params(request)
        with self._lock:
            self.calls.append(Call(method, params, time.monotonic()))
        fault = self._take_fault(method.lower(), params.get("chat_id"))
        if fault is not None:
            if fault.delay:
                await asyncio.sleep(fault.delay)
            if fault.drop:
                if request.transport is not None:
                    request.transport.abort()
                return web.Response(status=500)  # never reaches the client
            if fault.status:
                return _error(fault.status, fault.description, fault.parameters)
        handler = self._methods.get(method.lower())
        if handler is None:
            return _error(404, "Not Found")
        refused = self._over_limit(method, params.get("chat_id"))
        if refused is not None:
            return _error(
                429, f"Too Many Requests: retry after {refused}", {"retry_after": refused}
            )
        try:
            result = await handler(params)
        except ApiError as exc:
            return _error(exc.status, exc.description, exc.parameters)
        return web.json_response({"ok": True, "result": result})

    def _over_limit(self, method: str, chat_id: object) -> int | None:
        """None when the request fits every window (and is booked), else its retry_after."""
        chat = _chat_key(chat_id)
        if self.limits is None or method.lower() not in PACED_METHODS or chat is None:
            return None
        per_chat = self.limits.private if isinstance(chat, int) and chat > 0 else self.limits.group
        now = time.monotonic()
        with self._lock:
            for scope, key, (count, per) in (
                ("overall", "overall", self.limits.overall),
                ("chat", chat, per_chat),
            ):
                window = self._windows.setdefault(key, deque())
                while window and window[0] <= now - per:
                    window.popleft()
                if len(window) >= count:
                    self.violations.append(Violation(scope, chat, method, now))
                    return max(1, int(window[0] + per - now + 0.999))
            self._windows["overall"].append(now)
            self._windows[chat].append(now)
        return None

    def _take_fault(self, method: str, chat_id: object) -> Fault | None:
        with self._lock:
            for key in ((method, _chat_key(chat_id)), (method, None)):
                queue = self._faults.get(key)
                if queue:
                    return queue.popleft()
        return None

    # --- methods -----------------------------------------------------------------------

    async def _get_me(self, params: JSON) -> JSON:
        return self.bot_user

    async def _send_message(self, params: JSON) -> JSON:
        chat_id = _chat_key(params.get("chat_id"))
        if chat_id is None or chat_id == "":
            raise ApiError(400, "Bad Request: chat_id is empty")
        text = str(params.get("text") or "")
        visible, entities = _parse_text(text, params.get("parse_mode"))
        thread = params.get("message_thread_id")
        markup = params.get("reply_markup")
        message = self._new_message(chat_id, visible, markup, thread)
        with self._lock:
            self.sent.append(
                Sent(
                    chat_id=chat_id,
                    text=text,
                    parse_mode=params.get("parse_mode"),
                    message_thread_id=thread,
                    reply_markup=markup,
                    message_id=message["message_id"],
                    visible=visible,
                    entities=entities,
                    params=params,
                    at=time.monotonic(),
                )
            )
        return message

    def _new_message(
        self, chat_id: int | str, visible: str, markup: JSON | None, thread: int | None
    ) -> JSON:
        with self._lock:
            chat = self._chats.get(chat_id) or self._chat(chat_id, _guess_type(chat_id), None, "")
            message: JSON = {
                "message_id": next(self._message_ids),
                "date": int(time.time()),
                "chat": chat,
                "from": self.bot_user,
                "text": visible,
            }
            if markup:
                message["reply_markup"] = markup
            if thread is not None:
                message |= {"message_thread_id": thread, "is_topic_message": True}
            self._messages[(chat_id, message["message_id"])] = message
            return message

    async def _edit_text(self, params: JSON) -> JSON:
        visible, _ = _parse_text(str(params.get("text") or ""), params.get("parse_mode"))
        return self._edit(params, {"text": visible, "reply_markup": params.get("reply_markup")})

    async def _edit_markup(self, params: JSON) -> JSON:
        return self._edit(params, {"reply_markup": params.get("reply_markup")})

    def _edit(self, params: JSON, change: JSON) -> JSON:
        key = (_chat_key(params.get("chat_id")) or "", int(params.get("message_id") or 0))
        with self._lock:
            self.edits.append(Call("edit", params, time.monotonic()))
            message = self._messages.get(key)
            if message is None:
                raise ApiError(400, "Bad Request: message to edit not found")
            if all(message.get(k) == v for k, v in change.items()):
                raise ApiError(
                    400,
                    "Bad Request: message is not modified: specified new message content and "
                    "reply markup are exactly the same as a current content and reply markup "
                    "of the message",
                )
            message.update({k: v for k, v in change.items() if v is not None})
            if change.get("reply_markup") is None:
                message.pop("reply_markup", None)
            return dict(message)

    async def _answer_callback(self, params: JSON) -> bool:
        with self._lock:
            self.callback_answers.append(params)
        return True

    async def _set_commands(self, params: JSON) -> bool:
        with self._lock:
            self.commands = list(params.get("commands") or [])
        return True

    async def _get_commands(self, params: JSON) -> list[JSON]:
        return self.commands

    async def _get_chat_member(self, params: JSON) -> JSON:
        chat_id, user_id = _chat_key(params.get("chat_id")), int(params.get("user_id") or 0)
        return self._member(chat_id, user_id)

    async def _get_chat_administrators(self, params: JSON) -> list[JSON]:
        chat_id = _chat_key(params.get("chat_id"))
        with self._lock:
            ids = set(self._admins.get(chat_id or 0, set()))
            owner = self._owners.get(chat_id or 0)
        return [self._member(chat_id, i) for i in sorted(ids | ({owner} if owner else set()))]

    def _member(self, chat_id: int | str | None, user_id: int) -> JSON:
        user = {"id": user_id, "is_bot": False, "first_name": f"user{user_id}"}
        with self._lock:
            if self._owners.get(chat_id or 0) == user_id:
                return {"status": "creator", "user": user, "is_anonymous": False}
            if user_id in self._admins.get(chat_id or 0, set()):
                return {"status": "administrator", "user": user, **_ADMIN_RIGHTS}
        return {"status": "member", "user": user}

    async def _get_updates(self, params: JSON) -> list[JSON]:
        offset = int(params.get("offset") or 0)
        limit = int(params.get("limit") or 100)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + float(params.get("timeout") or 0)
        while True:
            with self._lock:
                if offset:  # Telegram forgets updates below the offset: they are confirmed
                    self._updates = [u for u in self._updates if u["update_id"] >= offset]
                pending = self._updates[:limit]
            if self._closing:
                return []
            if pending:
                return pending
            remaining = deadline - loop.time()
            if remaining <= 0 or self._wake is None:
                return []
            try:
                await asyncio.wait_for(self._wake.wait(), remaining)
            except TimeoutError:
                return []

    def _chat(self, chat_id: int | str, kind: str, title: str | None, first_name: str) -> JSON:
        with self._lock:
            chat: JSON = {"id": chat_id, "type": kind}
            if kind == "private":
                chat["first_name"] = first_name or "Tess"
            else:
                chat["title"] = title or f"Test {kind} {chat_id}"
            self._chats[chat_id] = chat
            return chat


_ADMIN_RIGHTS = {
    "can_be_edited": False,
    "is_anonymous": False,
    "can_manage_chat": True,
    "can_delete_messages": True,
    "can_manage_video_chats": True,
    "can_restrict_members": True,
    "can_promote_members": False,
    "can_change_info": True,
    "can_invite_users": True,
    "can_post_stories": False,
    "can_edit_stories": False,
    "can_delete_stories": False,
}


async def _true(params: JSON) -> bool:
    return True


async def _webhook_info(params: JSON) -> JSON:
    return {"url": "", "has_custom_certificate": False, "pending_update_count": 0}


def _error(status: int, description: str, parameters: JSON | None = None) -> web.Response:
    body: JSON = {"ok": False, "error_code": status, "description": description}
    if parameters:
        body["parameters"] = parameters
    return web.json_response(body, status=status)


async def _read_params(request: web.Request) -> JSON:
    if request.content_type == "application/json":
        data = await request.json()
        return dict(data) if isinstance(data, dict) else {}
    if request.method != "POST" or not request.body_exists:
        return {k: _decode(k, v) for k, v in request.query.items()}
    form = await request.post()
    return {k: _decode(k, v) if isinstance(v, str) else repr(v) for k, v in form.items()}


def _decode(key: str, value: str) -> Any:
    """A form field's value: strings stay strings, numbers and JSON objects are decoded."""
    if key in _STRING_FIELDS:
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def _chat_key(value: object) -> int | str | None:
    if value is None:
        return None
    if isinstance(value, int):
        return value
    text = str(value)
    return int(text) if re.fullmatch(r"-?\d+", text) else text


def _guess_type(chat_id: int | str) -> str:
    if isinstance(chat_id, str):
        return "channel"
    if chat_id > 0:
        return "private"
    return "supergroup" if str(chat_id).startswith("-100") else "group"


def _parse_text(text: str, parse_mode: object) -> tuple[str, int]:
    """(visible text, entity count) as Telegram parses it; ApiError 400 where Telegram would."""
    if str(parse_mode or "").upper() == "HTML":
        visible, entities = parse_html(text)
    else:
        visible, entities = text, 0
    visible = visible.strip()
    if not visible:
        raise ApiError(400, "Bad Request: message text is empty")
    if len(visible.encode("utf-16-le")) // 2 > MAX_TEXT:
        raise ApiError(400, "Bad Request: message is too long")
    if entities > MAX_ENTITIES:
        raise ApiError(400, "Bad Request: too many entities")
    return visible, entities


def parse_html(text: str) -> tuple[str, int]:
    """Telegram's HTML parse mode, strictly: (visible text, number of entities)."""
    visible: list[str] = []
    stack: list[str] = []
    entities = pos = 0
    for m in _HTML_TOKEN.finditer(text):
        visible.append(text[pos : m.start()])
        pos = m.end()
        where = len(text[: m.start()].encode())
        if m.group(0) in "<>&":
            raise ApiError(
                400, f"Bad Request: can't parse entities: bare {m.group(0)!r} at {where}"
            )
        if m.group(4):
            visible.append(html.unescape(m.group(0)))
            continue
        closing, tag, attrs = m.group(1), m.group(2).lower(), m.group(3)
        if tag not in _TAGS:
            raise ApiError(400, f"Bad Request: can't parse entities: unsupported tag {tag!r}")
        if closing:
            if not stack or stack[-1] != tag:
                raise ApiError(400, f"Bad Request: can't parse entities: unmatched </{tag}>")
            stack.pop()
            continue
        if tag == "a" and not re.fullmatch(r'\s+href="[^"<>]*"\s*', attrs):
            raise ApiError(400, "Bad Request: can't parse entities: bad <a> attributes")
        stack.append(tag)
        entities += 1
    visible.append(text[pos:])
    if stack:
        raise ApiError(400, f"Bad Request: can't parse entities: unclosed <{stack[-1]}>")
    return "".join(visible), entities

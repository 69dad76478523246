"""The Telegram transport through the real python-telegram-bot against the fake Bot API.

Each fault Telegram can answer maps to the right ``DeliveryError``; the token never appears
in an error, a chained traceback, or a record of our own loggers.
"""

from __future__ import annotations

import io
import logging
import traceback
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from fakebotapi import FakeBotApi, Fault

from bot.errors import ConfigError, DeliveryError
from bot.model import Story
from bot.telegram.render import render_alert
from bot.telegram.transport import (
    ConsoleTransport,
    TelegramTransport,
    build_application,
    close_application,
    html_to_plain,
    open_application,
)

TOKEN = "123456:AAHsecretsecretsecretsecret_-42"
CHAT = 4242


@pytest.fixture
async def api() -> AsyncIterator[FakeBotApi]:
    async with FakeBotApi(TOKEN) as server:
        yield server


@pytest.fixture
async def transport(api: FakeBotApi) -> AsyncIterator[TelegramTransport]:
    async with build_application(TOKEN, api.api_url).bot as bot:
        yield TelegramTransport(bot)


def leaks(exc: BaseException) -> bool:
    """Whether the token shows anywhere in the error as it would be logged."""
    return TOKEN in "".join(traceback.format_exception(exc)) or TOKEN in repr(exc)


async def test_send_returns_the_message_id(api: FakeBotApi, transport: TelegramTransport) -> None:
    first = await transport.send(CHAT, "<b>one</b> &amp; two")
    second = await transport.send(-1001, "three", thread_id=7)
    assert second > first
    one, three = api.sent
    assert (one.chat_id, one.text, one.parse_mode, one.message_id) == (
        CHAT,
        "<b>one</b> &amp; two",
        "HTML",
        first,
    )
    assert one.params["link_preview_options"] == {"is_disabled": True}
    assert one.message_thread_id is None
    assert (three.chat_id, three.message_thread_id) == (-1001, 7)


async def test_a_rendered_alert_is_accepted(api: FakeBotApi, transport: TelegramTransport) -> None:
    story = Story(
        1,
        '<Fintech> & "friends" ' * 400,
        "https://example.org/a?b=1&c=2",
        summary="粵港澳大灣區 fintech " * 500,
        published=datetime(2026, 11, 28, 10, 15, tzinfo=UTC),
        sources=("Reuters", "SCMP"),
        topics=("gba-fintech",),
        keywords=("粤港澳大湾区", "fintech"),
    )
    await transport.send(CHAT, render_alert(story))
    assert api.sent[0].visible.startswith('<Fintech> & "friends"')


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (Fault.retry_after(3), {"retry_after": 3.0, "permanent": False}),
        (Fault.blocked(), {"permanent": True, "chat_gone": True}),
        (Fault.kicked(), {"permanent": True, "chat_gone": True}),
        (Fault.migrated(-1009876), {"permanent": True, "migrated_to": -1009876}),
        (Fault.chat_not_found(), {"permanent": True, "chat_gone": False}),
        (Fault.server_error(500), {"permanent": False, "retry_after": None}),
        (Fault.bad_gateway(), {"permanent": False, "retry_after": None}),
        (Fault.dropped(), {"permanent": False, "retry_after": None}),
    ],
    ids=["429", "403-blocked", "403-kicked", "migrated", "400", "500", "502", "dropped"],
)
async def test_faults_map_to_delivery_errors(
    api: FakeBotApi,
    transport: TelegramTransport,
    fault: Fault,
    expected: dict[str, object],
) -> None:
    api.inject("sendMessage", fault, chat_id=CHAT)
    with pytest.raises(DeliveryError) as caught:
        await transport.send(CHAT, "hello")
    error = caught.value
    for name, value in expected.items():
        assert getattr(error, name) == value, name
    assert str(CHAT) in str(error)
    assert not leaks(error)
    assert api.sent == []
    assert await transport.send(CHAT, "again") > 0  # one fault, then Telegram answers


async def test_bad_request_carries_telegrams_reason(transport: TelegramTransport) -> None:
    with pytest.raises(DeliveryError, match="unclosed <b>") as caught:
        await transport.send(CHAT, "<b>broken")
    assert caught.value.permanent


async def test_faults_are_per_chat(api: FakeBotApi, transport: TelegramTransport) -> None:
    api.inject("sendMessage", Fault.blocked(), chat_id=CHAT)
    assert await transport.send(CHAT + 1, "other chat") > 0
    with pytest.raises(DeliveryError):
        await transport.send(CHAT, "blocked chat")


async def test_revoked_token_holds_every_send_and_is_not_quoted(
    api: FakeBotApi, transport: TelegramTransport
) -> None:
    api.token = "123456:AAHrevokedrevokedrevoked"  # Telegram now answers 401 to our token
    with pytest.raises(DeliveryError) as caught:
        await transport.send(CHAT, "hello")
    # Not the chat's fault and not permanent: the outbox keeps every row for when the
    # operator fixes the token.
    assert caught.value.bot_wide and not caught.value.permanent
    assert caught.value.retry_after is not None and caught.value.retry_after > 0
    assert "token" in str(caught.value)
    assert not leaks(caught.value)


async def test_rejected_token_at_startup_is_a_config_error_without_the_token(
    api: FakeBotApi,
) -> None:
    application = build_application(TOKEN, api.api_url)
    api.token = "654321:AAHanotheranotheranother"
    try:
        with pytest.raises(ConfigError, match=r"telegram\.token") as caught:
            await open_application(application)
    finally:
        await close_application(application)
    assert not leaks(caught.value)
    assert api.bad_tokens == 1


async def test_unreachable_api_at_startup_is_a_delivery_error() -> None:
    async with FakeBotApi(TOKEN) as gone:
        url = gone.api_url
    application = build_application(TOKEN, url)
    try:
        with pytest.raises(DeliveryError, match="cannot reach"):
            await open_application(application)
    finally:
        await close_application(application)


async def test_no_token_in_our_log_records(
    api: FakeBotApi, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    application = build_application(TOKEN, api.api_url)
    await open_application(application)
    try:
        transport = TelegramTransport(application.bot)
        for fault in (Fault.retry_after(1), Fault.blocked(), Fault.dropped()):
            api.inject("sendMessage", fault)
            with pytest.raises(DeliveryError):
                await transport.send(CHAT, "x")
    finally:
        await close_application(application)
    ours = [r for r in caplog.records if r.name.startswith("bot.")]
    assert not [r for r in ours if TOKEN in r.getMessage()]


async def test_console_transport_prints_readable_alerts() -> None:
    stream = io.StringIO()
    console = ConsoleTransport(stream)
    story = Story(
        1, "A <b> & B", "https://example.org/?a=1&b=2", summary="fintech", keywords=("fintech",)
    )
    first = await console.send(CHAT, render_alert(story))
    second = await console.send(-100, "<i>second</i>", thread_id=3)
    assert second == first + 1
    out = stream.getvalue()
    assert "A <b> & B\nhttps://example.org/?a=1&b=2\nfintech" in out
    assert f"to chat {CHAT}" in out and "to chat -100 thread 3" in out
    assert "<i>" not in out and "&amp;" not in out


def test_html_to_plain_keeps_escaped_text_literal() -> None:
    assert html_to_plain("<b>x &lt;b&gt; &amp;amp;</b>\n#tag") == "x <b> &amp;\n#tag"


async def test_fake_api_also_serves_from_a_thread() -> None:
    with FakeBotApi(TOKEN) as api:  # the way a test drives a newsbot subprocess
        bot = build_application(TOKEN, api.api_url).bot
        await bot.initialize()
        try:
            message_id = await TelegramTransport(bot).send(CHAT, "from a thread")
            assert api.wait_for_sent_blocking(1)[0].message_id == message_id
            api.stop()
            with pytest.raises(DeliveryError, match="network error"):
                await TelegramTransport(bot).send(CHAT, "server stopped")
        finally:
            await bot.shutdown()

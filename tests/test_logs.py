from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from bot.logs import setup_logging

TOKEN = "123456789:AAFakeTokenForTestsOnly_abcdefghijkl"


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    buffer = io.StringIO()
    setup_logging("DEBUG", secrets=[TOKEN], stream=buffer)
    yield buffer
    root.handlers[:], _ = saved[0], root.setLevel(saved[1])


def test_token_is_redacted_in_messages_args_and_tracebacks(stream: io.StringIO) -> None:
    log = logging.getLogger("telegram.ext")
    log.debug("POST https://api.telegram.org/bot%s/getMe", TOKEN)
    log.info(f"token {TOKEN} in the message")
    try:
        raise ValueError(f"The token `{TOKEN}` was rejected by the server.")
    except ValueError:
        log.exception("failed")
    text = stream.getvalue()
    assert TOKEN not in text
    assert text.count("[REDACTED]") >= 3
    assert "getMe" in text


def test_token_shaped_strings_are_redacted_even_when_unknown(stream: io.StringIO) -> None:
    other = "987654321:ZZOtherTokenNotConfigured_0123456789"
    logging.getLogger("x").warning("url .../bot%s/sendMessage", other)
    assert other not in stream.getvalue()


def test_httpx_is_quiet_at_info(stream: io.StringIO) -> None:
    assert logging.getLogger("httpx").getEffectiveLevel() >= logging.WARNING
    assert logging.getLogger("httpcore").getEffectiveLevel() >= logging.WARNING

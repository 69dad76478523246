"""Logging set-up, with the bot token redacted at every level.

The token is in every Bot API URL: httpx logs each request URL at INFO, python-telegram-bot
logs its API URL at DEBUG, and ``InvalidToken``'s message contains the token. So the noisy
loggers are quieted, and every handler gets a filter and a formatter that replace the token
(and anything shaped like one after ``/bot``) with ``[REDACTED]``.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable
from typing import TextIO

_TOKEN_SHAPE = re.compile(r"\d{5,}:[A-Za-z0-9_-]{30,}")
# apscheduler warns each time a job is still running when its next run comes ("maximum number
# of running instances reached"): expected for a long delivery drain, noise in the log.
_QUIET = {"httpx": logging.WARNING, "httpcore": logging.WARNING, "apscheduler": logging.ERROR}
REDACTED = "[REDACTED]"


class Redactor:
    """Replaces the given secrets, and token-shaped strings, in text."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return _TOKEN_SHAPE.sub(REDACTED, text)


class RedactingFilter(logging.Filter):
    """Renders the record's message once, redacted, so no handler sees the raw arguments."""

    def __init__(self, redact: Redactor) -> None:
        super().__init__()
        self._redact = redact

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            message = str(record.msg)
        record.msg, record.args = self._redact(message), None
        return True


class RedactingFormatter(logging.Formatter):
    """Redacts the final text too: exception tracebacks can quote the token."""

    def __init__(self, redact: Redactor, fmt: str) -> None:
        super().__init__(fmt)
        self._redact = redact

    def format(self, record: logging.LogRecord) -> str:
        return self._redact(super().format(record))


def setup_logging(
    level: str = "INFO", *, secrets: Iterable[str] = (), stream: TextIO | None = None
) -> None:
    """Configure the root logger once for the process; idempotent."""
    redact = Redactor(secrets)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(RedactingFilter(redact))
    handler.setFormatter(
        RedactingFormatter(redact, "%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name, quiet in _QUIET.items():
        logging.getLogger(name).setLevel(max(quiet, root.level))

"""The exception tree. Foreign errors are translated into these at the edges.

    NewsbotError
    ├── ConfigError      a bad setting; names the key and the file
    ├── RuleError        a bad rule file; str() is ``FILE:LINE: message``
    │   └── RuleErrors   several RuleErrors found in one pass
    ├── FetchError       a feed could not be fetched (network, HTTP status, size, deadline)
    ├── ParseError       a fetched document held no usable feed
    └── DeliveryError    Telegram refused or failed a send; says whether to retry and when

Messages name the resource and the cause. None of them ever contains the bot token.
"""

from __future__ import annotations

from collections.abc import Sequence


class NewsbotError(Exception):
    """Base of every error newsbot raises on purpose."""


class ConfigError(NewsbotError):
    """A configuration value is missing or invalid."""

    def __init__(self, message: str, *, key: str | None = None, file: str | None = None):
        self.key = key
        self.file = file
        where = ", ".join(p for p in (file and f"in {file}", key and f"key {key!r}") if p)
        super().__init__(f"{message} ({where})" if where else message)


class RuleError(NewsbotError):
    """A problem in a rule file at a line; ``str()`` is ``FILE:LINE: message``."""

    def __init__(self, file: str, line: int, message: str, *, warning: bool = False):
        self.file = file
        self.line = line
        self.message = message
        self.warning = warning
        super().__init__(f"{file}:{line}: {message}")

    def __lt__(self, other: RuleError) -> bool:
        return (self.file, self.line, self.message) < (other.file, other.line, other.message)


class RuleErrors(RuleError):
    """Every problem found in one validation pass, sorted by file and line."""

    def __init__(self, problems: Sequence[RuleError]):
        self.problems = sorted(problems)
        first = self.problems[0]
        super().__init__(first.file, first.line, first.message)

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.problems)


class FetchError(NewsbotError):
    """A feed could not be fetched. ``status`` is the HTTP status when there was one."""

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None
    ):
        self.status = status
        self.retry_after = retry_after
        super().__init__(message)


class ParseError(NewsbotError):
    """A fetched document is not a feed with entries."""


class DeliveryError(NewsbotError):
    """A message was not delivered.

    ``permanent``: retrying cannot help (the row ends as dead). ``retry_after``: seconds
    Telegram asked us to wait. ``chat_gone``: the chat blocked or removed the bot (403).
    ``migrated_to``: a group became a supergroup with this new id. ``bot_wide``: Telegram
    refused the bot itself (revoked token), not this chat: every send waits.
    """

    def __init__(
        self,
        message: str,
        *,
        permanent: bool = False,
        retry_after: float | None = None,
        chat_gone: bool = False,
        migrated_to: int | None = None,
        bot_wide: bool = False,
    ):
        self.permanent = permanent
        self.bot_wide = bot_wide
        self.retry_after = retry_after
        self.chat_gone = chat_gone
        self.migrated_to = migrated_to
        super().__init__(message)

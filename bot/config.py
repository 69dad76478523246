"""Settings: a TOML file plus environment overrides, validated into frozen values.

Where the file comes from: ``--config FILE``, else env ``NEWSBOT_CONFIG``, else
``newsbot.toml`` in the working directory if present, else the defaults alone. The token comes
from env ``TELEGRAM_BOT_TOKEN``, else the file named by ``TELEGRAM_BOT_TOKEN_FILE`` (Docker
secrets), else ``telegram.token``. Nothing is read at import time: ``load_settings`` is called
by the command line with the environment it was given.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

from bot.errors import ConfigError
from bot.units import parse_duration, parse_size

DEFAULT_FILE = "newsbot.toml"
DEFAULT_API_URL = "https://api.telegram.org"
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ChannelSettings:
    chat_id: int
    topics: tuple[str, ...]
    thread_id: int | None = None


@dataclass(frozen=True, slots=True)
class TelegramSettings:
    token: str = field(default="", repr=False)
    api_url: str = DEFAULT_API_URL
    admins: frozenset[int] = frozenset()
    access: str = "open"  # "open": anyone may use the bot; "allowlist": only those below
    allowed_users: frozenset[int] = frozenset()
    allowed_chats: frozenset[int] = frozenset()
    channels: tuple[ChannelSettings, ...] = ()


@dataclass(frozen=True, slots=True)
class PollingSettings:
    interval: timedelta = timedelta(minutes=10)
    timeout: timedelta = timedelta(seconds=20)
    concurrency: int = 16
    max_bytes: int = 10_000_000
    backfill: timedelta = timedelta(hours=24)
    max_age: timedelta = timedelta(days=7)
    user_agent: str = "newsbot/0.1 (+https://github.com/newsbot/newsbot)"


@dataclass(frozen=True, slots=True)
class Settings:
    telegram: TelegramSettings = TelegramSettings()
    storage_url: str = "sqlite:///state/newsbot.db"
    rules_dir: Path = Path("rules")
    polling: PollingSettings = PollingSettings()
    story_window: timedelta = timedelta(hours=72)
    timezone: str = "Asia/Hong_Kong"
    source: str | None = None


_SCHEMA: dict[str, frozenset[str]] = {
    "": frozenset({"telegram", "storage", "rules", "polling", "dedup", "display"}),
    "telegram": frozenset(
        {"token", "api_url", "admins", "channels", "access", "allowed_users", "allowed_chats"}
    ),
    "telegram.channels": frozenset({"chat_id", "topics", "thread_id"}),
    "storage": frozenset({"url"}),
    "rules": frozenset({"dir"}),
    "polling": frozenset(
        {"interval", "timeout", "concurrency", "max_bytes", "backfill", "max_age", "user_agent"}
    ),
    "dedup": frozenset({"window"}),
    "display": frozenset({"timezone"}),
}


def config_path(explicit: str | None, env: Mapping[str, str]) -> Path | None:
    """The config file to read, or None to run on defaults."""
    if explicit:
        return Path(explicit)
    if env.get("NEWSBOT_CONFIG"):
        return Path(env["NEWSBOT_CONFIG"])
    default = Path(DEFAULT_FILE)
    return default if default.is_file() else None


def load_settings(path: Path | None, env: Mapping[str, str]) -> Settings:
    """Read and validate settings; raises ConfigError naming the key and the file."""
    raw: dict[str, Any] = {}
    source = str(path) if path else None
    if path is not None:
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as e:
            raise ConfigError("config file not found", file=source) from e
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"cannot read config file: {e}", file=source) from e
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"invalid TOML: {e}", file=source) from e
    return _Reader(source).settings(raw, env)


class _Reader:
    def __init__(self, source: str | None) -> None:
        self.source = source

    def error(self, key: str, message: str) -> ConfigError:
        return ConfigError(message, key=key, file=self.source)

    def table(self, raw: Mapping[str, Any], name: str) -> Mapping[str, Any]:
        value = raw.get(name.rsplit(".", 1)[-1], {}) if name else raw
        if not isinstance(value, Mapping):
            raise self.error(name, "expected a table")
        unknown = set(value) - _SCHEMA[name]
        if unknown:
            key = f"{name}.{sorted(unknown)[0]}" if name else sorted(unknown)[0]
            raise self.error(key, f"unknown setting; known: {', '.join(sorted(_SCHEMA[name]))}")
        return value

    def get(self, table: Mapping[str, Any], key: str, name: str, kind: type[T], default: T) -> T:
        value = table.get(key.rsplit(".", 1)[-1], default)
        if kind is int and isinstance(value, bool):
            raise self.error(key, f"expected an integer, got {value!r}")
        if not isinstance(value, kind):
            raise self.error(key, f"expected {name}, got {value!r}")
        return value

    def convert(self, table: Mapping[str, Any], key: str, fn: Callable[[Any], T], default: T) -> T:
        short = key.rsplit(".", 1)[-1]
        if short not in table:
            return default
        try:
            return fn(table[short])
        except (ValueError, TypeError) as e:
            raise self.error(key, str(e)) from e

    def duration(self, table: Mapping[str, Any], key: str, default: timedelta) -> timedelta:
        value = self.convert(table, key, lambda v: timedelta(seconds=parse_duration(v)), default)
        if value <= timedelta(0) and key != "polling.backfill":
            raise self.error(key, "must be greater than zero")
        return value

    def settings(self, raw: Mapping[str, Any], env: Mapping[str, str]) -> Settings:
        top = self.table(raw, "")
        d = Settings()
        return Settings(
            telegram=self.telegram(self.table(top, "telegram"), env),
            storage_url=self.get(
                self.table(top, "storage"), "storage.url", "a string", str, d.storage_url
            ),
            rules_dir=Path(
                self.get(self.table(top, "rules"), "rules.dir", "a string", str, "rules")
            ),
            polling=self.polling(self.table(top, "polling")),
            story_window=self.duration(self.table(top, "dedup"), "dedup.window", d.story_window),
            timezone=self.timezone(self.table(top, "display")),
            source=self.source,
        )

    def timezone(self, table: Mapping[str, Any]) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        name = self.get(table, "display.timezone", "a string", str, Settings().timezone)
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError) as e:
            raise self.error("display.timezone", f"unknown time zone {name!r}") from e
        return name

    def telegram(self, table: Mapping[str, Any], env: Mapping[str, str]) -> TelegramSettings:
        api_url = self.get(table, "telegram.api_url", "a string", str, DEFAULT_API_URL)
        if not api_url.startswith(("http://", "https://")):
            raise self.error("telegram.api_url", "expected an http:// or https:// URL")
        admins = self.ids(table, "telegram.admins")
        access = self.get(table, "telegram.access", "a string", str, "open")
        if access not in ("open", "allowlist"):
            raise self.error("telegram.access", 'expected "open" or "allowlist"')
        channels = self.get(table, "telegram.channels", "an array of tables", list, [])
        parsed = tuple(self.channel(c) for c in channels)
        chat_ids = [c.chat_id for c in parsed]
        for chat_id in chat_ids:
            if chat_ids.count(chat_id) > 1:
                raise self.error(
                    "telegram.channels.chat_id",
                    f"chat {chat_id} is listed twice; give it one entry with all its topics",
                )
        return TelegramSettings(
            token=self.token(table, env),
            api_url=api_url.rstrip("/"),
            admins=admins,
            channels=parsed,
            access=access,
            allowed_users=self.ids(table, "telegram.allowed_users"),
            allowed_chats=self.ids(table, "telegram.allowed_chats"),
        )

    def ids(self, table: Mapping[str, Any], key: str) -> frozenset[int]:
        values = self.get(table, key, "a list of integer ids", list, [])
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            raise self.error(key, "expected a list of integer ids")
        return frozenset(values)

    def token(self, table: Mapping[str, Any], env: Mapping[str, str]) -> str:
        if env.get("TELEGRAM_BOT_TOKEN"):
            token, key = env["TELEGRAM_BOT_TOKEN"], "TELEGRAM_BOT_TOKEN"
        elif env.get("TELEGRAM_BOT_TOKEN_FILE"):
            key = "TELEGRAM_BOT_TOKEN_FILE"
            try:
                token = Path(env[key]).read_text(encoding="utf-8")
            except OSError as e:
                raise self.error(key, f"cannot read the token file: {e.strerror}") from e
        else:
            token = self.get(table, "telegram.token", "a string", str, "")
            key = "telegram.token"
        token = token.strip()
        head, _, tail = token.partition(":")
        if token and not (head.isdigit() and len(tail) >= 20):
            # Never echo the value: it is a secret even when it is malformed.
            raise self.error(key, "not a bot token (expected the form 123456:ABC-DEF...)")
        return token

    def channel(self, raw: Any) -> ChannelSettings:
        key = "telegram.channels"
        if not isinstance(raw, Mapping):
            raise self.error(key, "each channel is a table with chat_id and topics")
        table = self.table({"channels": raw}, key)
        chat_id = self.get(table, f"{key}.chat_id", "an integer chat id", int, 0)
        if chat_id == 0:
            raise self.error(f"{key}.chat_id", "missing or zero chat_id")
        topics = self.get(table, f"{key}.topics", "a list of topic ids", list, ["*"])
        if not topics or not all(isinstance(t, str) and t for t in topics):
            raise self.error(f"{key}.topics", 'expected a list of topic ids, or ["*"]')
        thread_id = table.get("thread_id")
        if thread_id is not None and (
            not isinstance(thread_id, int) or isinstance(thread_id, bool)
        ):
            raise self.error(f"{key}.thread_id", "expected an integer message_thread_id")
        return ChannelSettings(chat_id=chat_id, topics=tuple(topics), thread_id=thread_id)

    def polling(self, table: Mapping[str, Any]) -> PollingSettings:
        d = PollingSettings()
        concurrency = self.get(table, "polling.concurrency", "an integer", int, d.concurrency)
        if concurrency < 1:
            raise self.error("polling.concurrency", "must be at least 1")
        max_bytes = self.convert(table, "polling.max_bytes", parse_size, d.max_bytes)
        if max_bytes < 1024:
            raise self.error("polling.max_bytes", "must be at least 1KB")
        return PollingSettings(
            interval=self.duration(table, "polling.interval", d.interval),
            timeout=self.duration(table, "polling.timeout", d.timeout),
            concurrency=concurrency,
            max_bytes=max_bytes,
            backfill=self.duration(table, "polling.backfill", d.backfill),
            max_age=self.duration(table, "polling.max_age", d.max_age),
            user_agent=self.get(table, "polling.user_agent", "a string", str, d.user_agent),
        )

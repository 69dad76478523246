from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from bot.config import config_path, load_settings
from bot.errors import ConfigError

TOKEN = "123456789:AAFakeTokenForTestsOnly_abcdefghijkl"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "newsbot.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_a_file() -> None:
    s = load_settings(None, {})
    assert s.telegram.token == ""
    assert s.telegram.api_url == "https://api.telegram.org"
    assert s.storage_url == "sqlite:///state/newsbot.db"
    assert s.polling.interval == timedelta(minutes=10)
    assert s.polling.max_bytes == 10_000_000
    assert s.polling.backfill == timedelta(hours=24)
    assert s.polling.max_age == timedelta(days=7)


def test_full_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"""
[telegram]
token = "{TOKEN}"
api_url = "http://127.0.0.1:8081/"
admins = [42]
access = "allowlist"
allowed_users = [42, 43]
allowed_chats = [-100]
[[telegram.channels]]
chat_id = -1001234567890
topics = ["gba-fintech"]
thread_id = 7
[storage]
url = "sqlite:///tmp/x.db"
[rules]
dir = "myrules"
[polling]
interval = "5m"
timeout = "20s"
concurrency = 4
max_bytes = "2MB"
backfill = "12h"
max_age = "3d"
""",
    )
    s = load_settings(path, {})
    assert s.telegram.token == TOKEN
    assert s.telegram.api_url == "http://127.0.0.1:8081"
    assert s.telegram.admins == frozenset({42})
    assert s.telegram.access == "allowlist"
    assert s.telegram.allowed_users == frozenset({42, 43})
    assert s.telegram.allowed_chats == frozenset({-100})
    [channel] = s.telegram.channels
    assert (channel.chat_id, channel.topics, channel.thread_id) == (
        -1001234567890,
        ("gba-fintech",),
        7,
    )
    assert s.rules_dir == Path("myrules")
    assert s.polling.interval == timedelta(minutes=5)
    assert s.polling.concurrency == 4
    assert s.polling.max_bytes == 2_000_000
    assert s.polling.max_age == timedelta(days=3)


def test_env_token_wins_and_token_file(tmp_path: Path) -> None:
    path = write(tmp_path, '[telegram]\ntoken = "111111:BBBBBBBBBBBBBBBBBBBBBBBBBBBB"\n')
    assert load_settings(path, {"TELEGRAM_BOT_TOKEN": TOKEN}).telegram.token == TOKEN
    secret = tmp_path / "token"
    secret.write_text(TOKEN + "\n", encoding="utf-8")
    settings = load_settings(path, {"TELEGRAM_BOT_TOKEN_FILE": str(secret)})
    assert settings.telegram.token == TOKEN


def test_token_is_not_in_repr() -> None:
    settings = load_settings(None, {"TELEGRAM_BOT_TOKEN": TOKEN})
    assert TOKEN not in repr(settings)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('[polling]\ninterval = "soon"\n', "polling.interval"),
        ('[polling]\nmax_bytes = "lots"\n', "polling.max_bytes"),
        ("[polling]\nconcurrency = 0\n", "polling.concurrency"),
        ("[polling]\nconcurrency = true\n", "polling.concurrency"),
        ('[polling]\nspeed = "fast"\n', "polling.speed"),
        ('[telegram]\napi_url = "ftp://x"\n', "telegram.api_url"),
        ('[telegram]\nadmins = ["me"]\n', "telegram.admins"),
        ('[telegram]\naccess = "closed"\n', "telegram.access"),
        ("[telegram]\nallowed_users = [1.5]\n", "telegram.allowed_users"),
        ("[[telegram.channels]]\ntopics = []\nchat_id = 5\n", "telegram.channels.topics"),
        ("[[telegram.channels]]\ntopics = ['x']\n", "telegram.channels.chat_id"),
        ('[display]\ntimezone = "Mars/Olympus"\n', "display.timezone"),
        ("[storage]\nurl = 5\n", "storage.url"),
        (
            "[[telegram.channels]]\nchat_id = -5\n[[telegram.channels]]\nchat_id = -5\n",
            "telegram.channels.chat_id",
        ),
    ],
)
def test_bad_values_name_key_and_file(tmp_path: Path, text: str, key: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_settings(path, {})
    assert info.value.key == key
    assert str(path) in str(info.value) and key in str(info.value)


def test_invalid_toml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_settings(write(tmp_path, "[polling\n"), {})
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "nope.toml", {})


def test_malformed_token_is_an_error_that_does_not_echo_it() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(None, {"TELEGRAM_BOT_TOKEN": "hunter2-secret"})
    assert "hunter2" not in str(info.value)
    assert info.value.key == "TELEGRAM_BOT_TOKEN"


def test_config_path_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert config_path(None, {}) is None
    write(tmp_path, "")
    assert config_path(None, {}) == Path("newsbot.toml")
    assert config_path(None, {"NEWSBOT_CONFIG": "/etc/nb.toml"}) == Path("/etc/nb.toml")
    assert config_path("x.toml", {"NEWSBOT_CONFIG": "/etc/nb.toml"}) == Path("x.toml")

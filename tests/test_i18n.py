"""The message catalog: three languages for every message, valid Telegram HTML, and the
choice of language from Telegram's language_code."""

from __future__ import annotations

import re
import string
from datetime import UTC, datetime

import pytest
from fakebotapi import parse_html

from bot.model import Keyword, Topic
from bot.telegram.i18n import (
    CATALOG,
    COMMANDS,
    EN,
    HANS,
    HANT,
    LANGUAGES,
    OPERATOR_COMMANDS,
    PLAIN,
    menu,
    parse_language,
    pick_language,
    t,
    topic_description,
    topic_title,
    when,
)


@pytest.mark.parametrize(
    ("code", "lang"),
    [
        ("zh-hk", HANT),
        ("zh-TW", HANT),
        ("zh_mo", HANT),
        ("zh-hant", HANT),
        ("zh-Hant-HK", HANT),
        ("zh", HANS),
        ("zh-cn", HANS),
        ("zh-sg", HANS),
        ("zh-hans", HANS),
        ("zh-Hans-HK", HANS),  # the script says Simplified, whatever the region
        ("en", EN),
        ("en-US", EN),
        ("fr", EN),
        ("", EN),
        (None, EN),
    ],
)
def test_pick_language(code: str | None, lang: str) -> None:
    assert pick_language(code) == lang


@pytest.mark.parametrize(
    ("word", "lang"),
    [
        ("en", EN),
        ("English", EN),
        ("zh-hans", HANS),
        ("zh_CN", HANS),
        ("简体", HANS),
        ("zh", HANS),
        ("zh-hant", HANT),
        ("繁體中文", HANT),
        ("zh-HK", HANT),
        ("traditional", HANT),
        ("klingon", None),
        ("fr", None),
    ],
)
def test_parse_language(word: str, lang: str | None) -> None:
    assert parse_language(word) == lang


def _fields(template: str) -> set[str]:
    return {f for _, f, _, _ in string.Formatter().parse(template) if f}


@pytest.mark.parametrize("key", sorted(CATALOG))
def test_every_message_has_three_languages_with_the_same_fields(key: str) -> None:
    texts = CATALOG[key]
    assert len(texts) == len(LANGUAGES) and all(text.strip() for text in texts)
    assert _fields(texts[0]) == _fields(texts[1]) == _fields(texts[2])


@pytest.mark.parametrize("key", sorted(CATALOG))
def test_every_message_is_valid_telegram_html(key: str) -> None:
    for lang in LANGUAGES:
        values = {f: "x" for f in _fields(CATALOG[key][LANGUAGES.index(lang)])}
        visible, _ = parse_html(t(lang, key, **values))
        assert visible.strip()
        if key in PLAIN:
            assert not re.search(r"[<>&]", CATALOG[key][LANGUAGES.index(lang)]), key


def test_chinese_messages_are_in_their_own_script() -> None:
    # A few characters that differ between the scripts: 个/個, 这/這, 设/設, 关/關.
    simplified, traditional = set("个这设关们时语"), set("個這設關們時語")
    hans = "".join(texts[1] for texts in CATALOG.values() if not texts[1].startswith("语言：E"))
    hant = "".join(texts[2] for texts in CATALOG.values())
    assert not (set(hant) & (simplified - traditional) - set("简体中文"))
    assert not (set(hans) & (traditional - simplified) - set("繁體中文"))


def test_plural_variant_is_used_for_one() -> None:
    assert t(EN, "stop.done", count=1).startswith("Stopped: 1 subscription removed")
    assert t(EN, "stop.done", count=2).startswith("Stopped: 2 subscriptions removed")
    assert t(HANS, "stop.done", count=2).startswith("已停止：移除了 2 个订阅")


@pytest.mark.parametrize("lang", LANGUAGES)
def test_menus_fit_telegram_rules(lang: str) -> None:
    entries = menu(lang, operator=True)
    assert [c for c, _ in entries] == list(COMMANDS + OPERATOR_COMMANDS)
    for command, description in entries:
        assert re.fullmatch(r"[a-z0-9_]{1,32}", command)
        assert 3 <= len(description) <= 256
    assert "status" not in dict(menu(lang))


def test_when_formats_short_dates() -> None:
    moment = datetime(2026, 3, 5, 7, 9, tzinfo=UTC)
    assert when(moment, EN) == "5 Mar 07:09"
    assert when(moment, HANS) == when(moment, HANT) == "3月5日 07:09"


def test_topic_titles_are_shown_as_written() -> None:
    topic = Topic("gba", "大灣區金融科技", Keyword("GBA"))
    assert topic_title(topic, EN) == topic_title(topic, HANS) == "大灣區金融科技"


def test_topic_titles_follow_the_chats_language_where_the_rules_translate_them() -> None:
    topic = Topic(
        "gba",
        "GBA fintech",
        Keyword("GBA"),
        "The beat",
        titles=(("en", "GBA fintech"), ("zh-hant", "大灣區金融科技")),
        descriptions=(("zh-hans", "大湾区"),),
    )
    assert topic_title(topic, EN) == "GBA fintech"
    assert topic_title(topic, HANT) == "大灣區金融科技"
    assert topic_title(topic, HANS) == "大灣區金融科技", "the other script beats English"
    assert topic_description(topic, EN) == "The beat"
    assert topic_description(topic, HANT) == topic_description(topic, HANS) == "大湾区"

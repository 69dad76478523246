"""feeds.yaml parsing: values for a good file, one exact FILE:LINE message per problem."""

from __future__ import annotations

import pytest

from bot.errors import RuleErrors
from bot.model import Feed
from bot.sources import parse_feeds

F = "rules/feeds.yaml"


def problems(text: str) -> list[str]:
    with pytest.raises(RuleErrors) as info:
        parse_feeds(text, F)
    return [str(p) for p in info.value.problems]


def test_parses_feeds_with_defaults() -> None:
    text = """\
feeds:
  - url: https://www.hkma.gov.hk/rss.xml
    name: HKMA
    interval: 5m
    tags: [hk, regulator]
  - url: http://rthk.hk/finance.xml
"""
    assert parse_feeds(text, F) == (
        Feed("https://www.hkma.gov.hk/rss.xml", "HKMA", ("hk", "regulator"), 300.0),
        Feed("http://rthk.hk/finance.xml", "rthk.hk"),
    )


def test_yaml_syntax_error_has_its_line() -> None:
    text = "feeds:\n  - url: https://a.example/x\n    tags: [hk\n"
    [message] = problems(text)
    assert message.startswith(f"{F}:4: invalid YAML:")


def test_unknown_key() -> None:
    text = "feeds:\n  - url: https://a.example/x\n    titel: A\n"
    assert problems(text) == [f"{F}:3: unknown key 'titel' (expected url, name, interval, tags)"]


def test_missing_url() -> None:
    assert problems("feeds:\n  - name: A\n") == [f"{F}:2: feed has no url"]


def test_url_must_be_http_or_https() -> None:
    text = "feeds:\n  - url: ftp://a.example/x\n"
    assert problems(text) == [f"{F}:2: url must be an http or https URL, got 'ftp://a.example/x'"]


def test_duplicate_url() -> None:
    text = "feeds:\n  - url: https://a.example/x\n  - url: https://a.example/x\n    name: B\n"
    assert problems(text) == [f"{F}:3: duplicate url 'https://a.example/x' (first at line 2)"]


def test_duplicate_name() -> None:
    text = (
        "feeds:\n  - url: https://a.example/x\n    name: A\n"
        "  - url: https://b.example/x\n    name: A\n"
    )
    assert problems(text) == [f"{F}:4: duplicate feed name 'A' (first at line 2)"]


def test_bad_interval() -> None:
    text = "feeds:\n  - url: https://a.example/x\n    interval: soon\n"
    [message] = problems(text)
    assert message.startswith(f"{F}:3: interval: expected a duration")


def test_tags_must_be_strings() -> None:
    text = "feeds:\n  - url: https://a.example/x\n    tags: [hk, [x]]\n"
    assert problems(text) == [f"{F}:3: tags must be a list of strings"]


def test_every_problem_in_one_pass() -> None:
    text = "feeds:\n  - name: A\n  - url: ftp://x\n  - url: https://ok.example\n    bad: 1\n"
    assert [p.split(":")[1] for p in problems(text)] == ["2", "3", "5"]


def test_empty_file_and_wrong_top_level() -> None:
    assert problems("") == [f"{F}:1: expected 'feeds:' with a list of feeds"]
    assert problems("feed:\n  - url: https://a.example\n") == [
        f"{F}:1: unknown key 'feed' (expected feeds)"
    ]
    assert problems("feeds: 3\n") == [f"{F}:1: 'feeds' must be a list"]

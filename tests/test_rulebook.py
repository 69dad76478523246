"""Topic files: the tree a good file gives, and one exact FILE:LINE message per broken kind."""

from __future__ import annotations

import pytest

from bot.model import AllOf, AnyOf, Feed, Keyword, NotOf
from bot.rulebook import Rulebook, build_rulebook, parse_topics

F = "rules/t.yaml"
FEEDS = (Feed("https://a.example/rss", "A News", ("hk", "regulator")),)


def check(text: str) -> tuple[Rulebook | None, list[str]]:
    rulebook, problems = build_rulebook({F: text}, FEEDS)
    return rulebook, [str(p) for p in problems]


def errors(text: str) -> list[str]:
    rulebook, problems = check(text)
    assert rulebook is None
    return problems


def test_parses_nested_nodes_with_lines() -> None:
    text = """\
topics:
  - id: gba-fintech
    title: GBA fintech
    description: The beat.
    default: true
    match:
      all:
        - any: [GBA, 香港]
        - any: [fintech, "re:sandbox(es)?"]
      not:
        any: [football]
    fields: [title, summary]
    feeds: [tag:regulator, A News]
"""
    (topic,), problems = parse_topics(text, F)
    assert problems == []
    assert topic.match == AllOf(
        (
            AllOf(
                (
                    AnyOf((Keyword("GBA", 8), Keyword("香港", 8)), 8),
                    AnyOf((Keyword("fintech", 9), Keyword("sandbox(es)?", 9, regex=True)), 9),
                ),
                8,
            ),
            NotOf(AnyOf((Keyword("football", 11),), 11), 11),
        ),
        7,
    )
    assert (topic.id, topic.title, topic.description, topic.default) == (
        "gba-fintech",
        "GBA fintech",
        "The beat.",
        True,
    )
    assert topic.fields == ("title", "summary")
    assert topic.feeds == ("tag:regulator", "A News")
    assert (topic.file, topic.line) == (F, 2)


def test_forgiving_shorthands() -> None:
    text = "topics:\n  - id: a\n    match: [x, y]\n  - id: b\n    match: x\n    not: y\n"
    rulebook, problems = check(text.replace("    not: y\n", ""))
    assert rulebook is not None and problems == []
    assert rulebook.topic("a").match == AnyOf((Keyword("x", 3), Keyword("y", 3)), 3)  # type: ignore[union-attr]
    assert rulebook.topic("b").match == Keyword("x", 5)  # type: ignore[union-attr]
    (topic,), _ = parse_topics("topics:\n  - id: c\n    match: {any: [x], not: [y, z]}\n", F)
    assert isinstance(topic.match, AllOf)
    assert topic.match.children[1] == NotOf(AnyOf((Keyword("y", 3), Keyword("z", 3)), 3), 3)


def test_rulebook_api() -> None:
    text = "topics:\n  - id: a\n    default: true\n    match: x\n  - id: b\n    match: y\n"
    rulebook, _ = check(text)
    assert rulebook is not None
    assert rulebook.topic_ids == ("a", "b")
    assert [t.id for t in rulebook.default_topics] == ["a"]
    assert rulebook.topic("b") is rulebook.topics[1]
    assert rulebook.topic("zzz") is None
    assert rulebook.feeds == FEEDS
    assert rulebook.topic("a").title == "a"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "topics:\n  - id: a\n    match: {any: [x\n",
            f"{F}:4: invalid YAML: expected ',' or ']', but got '<stream end>'",
            id="yaml-syntax",
        ),
        pytest.param(
            "topics:\n  - id: a\n    match: x\n    colour: red\n",
            f"{F}:4: unknown key 'colour' (expected id, title, description, default, match,"
            " fields, feeds)",
            id="unknown-topic-key",
        ),
        pytest.param(
            "topics:\n  - id: a\n    match:\n      anyy: [x]\n",
            f"{F}:4: unknown key 'anyy' (expected any, all, not)",
            id="unknown-node-key",
        ),
        pytest.param(
            "topics:\n  - id: a\n    match:\n      any:\n        - x\n        - ''\n",
            f"{F}:6: empty keyword",
            id="empty-keyword",
        ),
        pytest.param(
            "topics:\n  - id: a\n    match:\n      any:\n        - x\n        - '   '\n",
            f"{F}:6: empty keyword",
            id="whitespace-keyword",
        ),
        pytest.param(
            "topics:\n  - id: a\n    match:\n      any: ['re:(x']\n",
            f"{F}:4: invalid or unsupported regular expression '(x': missing ): (x"
            " (RE2 syntax: no back-references or look-around)",
            id="invalid-regex",
        ),
        pytest.param(
            "topics:\n  - id: a\n    match:\n      any: ['re:(a)\\1']\n",
            f"{F}:4: invalid or unsupported regular expression '(a)\\\\1': invalid escape"
            " sequence: \\1 (RE2 syntax: no back-references or look-around)",
            id="backtracking-regex",
        ),
        pytest.param(
            "topics:\n  - id: a\n    title: A\n",
            f"{F}:2: topic 'a' has no match",
            id="no-match",
        ),
        pytest.param("topics:\n  - match: x\n", f"{F}:2: topic has no id", id="no-id"),
        pytest.param(
            "topics:\n  - id: Bad_Id\n    match: x\n",
            f"{F}:2: topic id 'Bad_Id': use lowercase letters, digits and hyphens",
            id="bad-id",
        ),
        pytest.param(
            "topics:\n  - id: a\n    default: maybe\n    match: x\n",
            f"{F}:3: default must be true or false",
            id="wrong-type-default",
        ),
        pytest.param(
            "topics:\n  - id: a\n    title: [x]\n    match: x\n",
            f"{F}:3: title must be a string",
            id="wrong-type-title",
        ),
        pytest.param(
            "topics:\n  - id: a\n    match: x\n    feeds:\n      - tag:hk\n      - tag:macau\n",
            f"{F}:6: unknown feed tag 'macau': no feed in feeds.yaml has it",
            id="unknown-feed-tag",
        ),
        pytest.param(
            "topics:\n  - id: a\n    match: x\n    feeds: [A News, B News]\n",
            f"{F}:4: unknown feed 'B News': not a feed name or url in feeds.yaml",
            id="unknown-feed",
        ),
        pytest.param(
            "topics:\n  - id: a\n    match:\n      all:\n        - x\n        - any: []\n",
            f"{F}:6: empty 'any' list",
            id="empty-any",
        ),
        pytest.param(
            "topics:\n  - id: a\n    match:\n      all: []\n",
            f"{F}:4: empty 'all' list",
            id="empty-all",
        ),
        pytest.param(
            "topics:\n  - id: a\n    match: x\n    fields: [title, body]\n",
            f"{F}:4: unknown field 'body' (expected title, summary, content, tags, link)",
            id="unknown-field",
        ),
        pytest.param(
            "topics:\n  - id: a\n    match:\n      any: [[x]]\n",
            f"{F}:4: a list item must be a keyword or a node (any/all/not)",
            id="nested-list",
        ),
        pytest.param(
            "topics:\n  - id: a\n    id: b\n    match: x\n",
            f"{F}:3: duplicate key 'id'",
            id="duplicate-key",
        ),
        pytest.param(
            "topics:\n  - id: a\n    match: {}\n",
            f"{F}:3: empty node: expected any, all or not",
            id="empty-node",
        ),
        pytest.param(
            "topics:\n  - just a string\n",
            f"{F}:2: a topic must be a mapping with id and match",
            id="topic-not-mapping",
        ),
    ],
)
def test_each_broken_kind_has_its_line(text: str, expected: str) -> None:
    assert errors(text) == [expected]


def test_duplicate_topic_id_across_files() -> None:
    files = {
        "rules/a.yaml": "topics:\n  - id: x\n    match: k\n",
        "rules/b.yaml": "topics:\n\n  - id: x\n    match: k\n",
    }
    rulebook, problems = build_rulebook(files, FEEDS)
    assert rulebook is None
    assert [str(p) for p in problems] == [
        "rules/b.yaml:3: duplicate topic id 'x' (first defined at rules/a.yaml:2)"
    ]


def test_every_problem_in_one_pass_sorted() -> None:
    text = "topics:\n  - id: a\n    match: {any: []}\n  - id: B\n    match: x\n  - id: c\n"
    assert [p.split(":")[1] for p in errors(text)] == ["3", "4", "6"]


def test_warnings_keep_the_rulebook() -> None:
    text = """\
topics:
  - id: a
    match:
      any: [fintech, casino, e-CNY, e cny]
      not: {any: [casino]}
"""
    rulebook, problems = build_rulebook({F: text}, FEEDS)
    assert rulebook is not None
    assert all(p.warning for p in problems)
    assert [str(p) for p in problems] == [
        f"{F}:4: keyword 'casino' can never match: a 'not' beside it excludes it",
        f"{F}:4: keyword 'e cny' repeats in this 'any' list",
    ]


def test_empty_file_is_a_warning() -> None:
    rulebook, problems = check("")
    assert rulebook is not None and rulebook.topics == ()
    assert problems == [f"{F}:1: no topics in this file"]


def test_runaway_pattern_is_linear_with_re2() -> None:
    # (a+)+$ backtracks exponentially in Python's re; RE2 accepts it and runs in linear time.
    rulebook, problems = check("topics:\n  - id: a\n    match: 're:(a+)+$'\n")
    assert rulebook is not None and problems == []


def test_titles_and_descriptions_may_be_given_per_language() -> None:
    text = """\
topics:
  - id: gba
    title: {zh-hans: 大湾区金融科技, en: GBA fintech, zh-hant: 大灣區金融科技}
    description:
      zh-hant: 大灣區的金融科技新聞
    match: GBA
  - id: plain
    title: Plain
    match: x
"""
    (gba, plain), problems = parse_topics(text, F)
    assert problems == []
    assert (gba.title, gba.description) == ("GBA fintech", "大灣區的金融科技新聞")
    assert gba.titles == (
        ("en", "GBA fintech"),
        ("zh-hans", "大湾区金融科技"),
        ("zh-hant", "大灣區金融科技"),
    )
    assert gba.descriptions == (("zh-hant", "大灣區的金融科技新聞"),)
    assert (plain.title, plain.titles, plain.descriptions) == ("Plain", (), ())


@pytest.mark.parametrize(
    ("title", "message"),
    [
        ("{fr: Titre}", "rules/t.yaml:3: unknown key 'fr'"),
        ("{en: ''}", "rules/t.yaml:3: title in en must be a non-empty string"),
        ("{}", "rules/t.yaml:3: title gives no text (use en, zh-hans or zh-hant)"),
        ("{en: [a, b]}", "rules/t.yaml:3: title in en must be a non-empty string"),
    ],
)
def test_a_bad_translated_title_is_reported_with_its_line(title: str, message: str) -> None:
    problems = errors(f"topics:\n  - id: gba\n    title: {title}\n    match: GBA\n")
    assert len(problems) == 1 and problems[0].startswith(message), problems

"""``rules test TEXT``: the explanation agrees with the matcher and shows the deciding branch."""

from __future__ import annotations

from bot.explain import explain, format_explanation
from bot.matcher import Matcher
from bot.model import Entry, Feed, Hit
from bot.rulebook import Rulebook, build_rulebook

FEED = Feed("https://a.example/rss", "A News", ("hk", "regulator"))
OTHER = Feed("https://b.example/rss", "B News", ("mainland",))
TOPICS = """\
topics:
  - id: gba-fintech
    match:
      all:
        - any: [Hong Kong, 深圳, GBA]
        - any: [fintech, 金融科技, "re:sandbox(es)?"]
      not:
        any: [casino]
  - id: regulator-only
    match: [HKMA, SFC]
    feeds: [tag:regulator]
"""


def rulebook() -> Rulebook:
    book, problems = build_rulebook({"rules/t.yaml": TOPICS}, (FEED, OTHER))
    assert book is not None, problems
    return book


def entry(title: str, summary: str = "") -> Entry:
    return Entry(None, "https://x.example/1", title, summary)


def test_verdicts_and_keywords_are_the_matchers() -> None:
    book = rulebook()
    matcher = Matcher.compile(book)
    for text in ("深圳金融科技", "Hong Kong sandbox", "HKMA fintech in Hong Kong", "GBA casino"):
        for feed in (FEED, OTHER):
            result = explain(matcher, entry(text), feed)
            assert result.hits == matcher.match(entry(text), feed), (text, feed)


def test_shows_the_true_branch_with_fields_and_lines() -> None:
    text = format_explanation(explain(rulebook(), entry("Hong Kong", "a fintech week"), FEED))
    assert text.splitlines() == [
        "✓ gba-fintech (rules/t.yaml:2): match: Hong Kong, fintech",
        "  ✓ all (line 4)",
        "    ✓ all (line 5)",
        "      ✓ any (line 5)",
        "        ✓ 'Hong Kong' in title (line 5)",
        "        (and 2 more false)",
        "      ✓ any (line 6)",
        "        ✓ 'fintech' in summary (line 6)",
        "        (and 2 more false)",
        "    ✓ not (line 8)",
        "      (nothing it excludes was found)",
        "✗ regulator-only (rules/t.yaml:9): no match",
    ]


def test_a_miss_shows_what_failed() -> None:
    result = explain(rulebook(), entry("Hong Kong casino fintech"), FEED)
    text = format_explanation(result, topic="gba-fintech")
    assert text.splitlines() == [
        "✗ gba-fintech (rules/t.yaml:2): no match",
        "  ✗ all (line 4)",
        "    ✗ not (line 8)",
        "      ✓ any (line 8)",
        "        ✓ 'casino' in title (line 8)",
        "    (and 1 more true)",
    ]
    assert format_explanation(result).startswith("no topic matches\n")


def test_a_false_any_of_keywords_is_one_line() -> None:
    text = format_explanation(explain(rulebook(), entry("深圳 news"), FEED), topic="gba-fintech")
    assert "✗ none of 3 keywords found" in text


def test_feed_scope() -> None:
    book = rulebook()
    scoped = explain(book, entry("SFC warns"), OTHER)
    assert scoped.hits == ()
    assert "✗ regulator-only (rules/t.yaml:9): not for this feed (feeds: tag:regulator)" in (
        format_explanation(scoped)
    )
    # No feed: every topic is tried, as `rules test TEXT` does.
    assert explain(book, entry("SFC warns")).hits == (Hit("regulator-only", ("SFC",)),)


def test_unknown_topic() -> None:
    assert format_explanation(explain(rulebook(), entry("x")), topic="nope") == "no topic 'nope'"

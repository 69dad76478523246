"""Alert rendering: escaping, Telegram's length limits, keyword bolding, hashtags, time.

Validity is checked with the fake Bot API's strict HTML parser (``fakebotapi.parse_html``),
the same check its sendMessage applies, so "valid" here means "Telegram would accept it".
"""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from fakebotapi import parse_html
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.model import Story
from bot.telegram.render import DIGEST_LINES, MAX_BOLD, find_keywords, render_alert, render_digest

HKT = ZoneInfo("Asia/Hong_Kong")
LINK = "https://example.org/news/1"
AT = datetime(2026, 11, 28, 10, 15, tzinfo=UTC)


def story(**kw: object) -> Story:
    values: dict[str, object] = {"id": 1, "title": "Shenzhen fintech pilot", "link": LINK}
    values.update(kw)
    return Story(**values)  # type: ignore[arg-type]


def utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def visible(markup: str) -> str:
    return parse_html(markup)[0].strip()


def bold(markup: str) -> list[str]:
    return [html.unescape(b) for b in re.findall(r"<b>([^<]*)</b>", markup)]


@pytest.mark.parametrize(
    "title",
    [
        "<script>alert(\"x\")</script> & 'co'",
        "<b>unclosed <i>tags & stuff",
        "a < b > c &amp; &lt; &#x27; &bogus;",
        "</a></b><a href='x'>",
    ],
)
def test_titles_with_markup_are_shown_as_written(title: str) -> None:
    markup = render_alert(story(title=title, summary=f"also {title}"))
    text = visible(markup)  # raises if Telegram would refuse it
    assert text.splitlines()[0] == title
    assert f"also {title}" in text


def test_title_is_a_bold_link_with_an_escaped_href() -> None:
    link = 'https://example.org/a?x=1&y="2"&z=<3>'
    markup = render_alert(story(link=link))
    href = re.search(r'<b><a href="([^"]*)">Shenzhen fintech pilot</a></b>', markup)
    assert href is not None
    assert html.unescape(href.group(1)) == link
    visible(markup)


@pytest.mark.parametrize(
    "link", ["javascript:alert(1)", "ftp://example.org/x", "/relative/path", "", "http://"]
)
def test_only_web_links_become_anchors(link: str) -> None:
    markup = render_alert(story(link=link))
    assert "<a " not in markup
    assert visible(markup).startswith("Shenzhen fintech pilot")


def test_sources_and_local_time() -> None:
    published = datetime(2026, 11, 28, 10, 15, tzinfo=UTC)
    s = story(sources=("Reuters", "A&B News"), published=published)
    assert "Reuters, A&amp;B News · 2026-11-28 18:15 HKT" in render_alert(s, tz=HKT)
    assert "2026-11-28 10:15 UTC" in render_alert(s)


def test_undated_story_has_no_time() -> None:
    markup = render_alert(story(sources=("Reuters",)))
    assert visible(markup).splitlines()[1] == "Reuters"


def test_many_sources_are_summarised() -> None:
    markup = render_alert(story(sources=tuple(f"Outlet {i}" for i in range(12))))
    assert "Outlet 4 +7 more" in markup
    assert "Outlet 5" not in markup


def test_topic_ids_become_hashtags() -> None:
    markup = render_alert(story(topics=("gba-fintech", "hk.regulators", "gba-fintech", "2024")))
    assert markup.splitlines()[-1] == "#gba_fintech #hk_regulators #t2024"


def test_snippet_is_cut_at_a_word_with_an_ellipsis() -> None:
    markup = render_alert(story(summary="alpha beta gamma " * 60))
    snippet = visible(markup).splitlines()[1]
    assert snippet.endswith("…")
    assert snippet[:-1].split()[-1] in ("alpha", "beta", "gamma")
    assert len(snippet) <= 300


def test_chinese_snippet_is_cut_at_a_character() -> None:
    markup = render_alert(story(summary="香港金融科技發展迅速" * 100))
    snippet = visible(markup).splitlines()[1]
    assert 250 < len(snippet) <= 300
    assert snippet.endswith("…")


@pytest.mark.parametrize("max_length", [4096, 1000, 200, 100, 60, 20])
def test_huge_title_and_summary_fit(max_length: int) -> None:
    s = story(title="headline " * 1200, summary="word " * 2000, sources=("Reuters",))
    markup = render_alert(s, max_length=max_length)
    assert utf16(markup) <= max_length
    assert utf16(visible(markup)) <= max_length
    assert visible(markup).startswith("headline")
    assert "…" in visible(markup)


def test_snippet_is_shortened_before_the_title() -> None:
    title = "T" * 2000
    markup = render_alert(story(title=title, summary="word " * 2000), max_length=2200)
    assert title in markup  # the whole title stays ...
    assert utf16(markup) <= 2200
    snippet = visible(markup).splitlines()[1]
    assert 100 < len(snippet) < 200  # ... the snippet gave way, but only as much as needed
    assert snippet.endswith("…")


def test_length_is_counted_in_utf16_units() -> None:
    markup = render_alert(story(title="😀" * 5000, summary="😀 " * 3000))
    assert utf16(markup) <= 4096
    assert "😀" in markup


def test_a_link_too_long_for_the_message_is_dropped() -> None:
    markup = render_alert(story(link="https://example.org/" + "x" * 5000))
    assert "<a " not in markup
    assert visible(markup).startswith("Shenzhen fintech pilot")


def test_keywords_are_bold_across_case_width_and_script() -> None:
    summary = "粵港澳大灣區 launches a ＦＩＮＴＥＣＨ sandbox; GBAS and gba banks join"
    s = story(summary=summary, keywords=("粤港澳大湾区", "fintech", "GBA", "re:sandbox(es)?"))
    assert bold(render_alert(s)) == ["粵港澳大灣區", "ＦＩＮＴＥＣＨ", "sandbox", "gba"]


def test_traditional_keyword_bolds_simplified_text() -> None:
    s = story(summary="深圳与香港的金融科技合作", keywords=("金融科技", "香港"))
    assert bold(render_alert(s)) == ["香港", "金融科技"]


def test_gaps_in_keywords_match_spaces_hyphens_or_nothing() -> None:
    s = story(summary="eCNY and e—CNY trials in Hong-Kong", keywords=("e-CNY", "Hong Kong"))
    assert bold(render_alert(s)) == ["eCNY", "e—CNY", "Hong-Kong"]


def test_only_the_first_few_matches_are_bold() -> None:
    s = story(summary="GBA news. " * 30, keywords=("GBA", "news"))
    markup = render_alert(s)
    assert len(bold(markup)) == MAX_BOLD
    assert parse_html(markup)[1] <= MAX_BOLD + 2


def test_overlapping_keywords_bold_the_longest_once() -> None:
    assert find_keywords("Greater Bay Area fintech", ["Bay Area", "Greater Bay Area"]) == [(0, 16)]


def test_bad_regex_keyword_only_loses_its_bold() -> None:
    s = story(summary="fintech (news", keywords=("re:(news", "fintech"))
    assert bold(render_alert(s)) == ["fintech"]


def test_keyword_cut_by_the_snippet_is_not_bold() -> None:
    s = story(summary="x" * 298 + " fintech", keywords=("fintech",))
    assert bold(render_alert(s)) == []


@settings(max_examples=150, deadline=None)
@given(
    title=st.text(max_size=300),
    summary=st.text(max_size=600),
    link=st.one_of(st.just(LINK), st.text(max_size=50)),
    keywords=st.lists(st.text(min_size=1, max_size=8), max_size=4),
    sources=st.lists(st.text(max_size=30), max_size=3),
    max_length=st.integers(min_value=30, max_value=600),
)
def test_any_story_renders_valid_html_within_the_limit(
    title: str,
    summary: str,
    link: str,
    keywords: list[str],
    sources: list[str],
    max_length: int,
) -> None:
    s = Story(1, title, link, summary=summary, sources=tuple(sources), keywords=tuple(keywords))
    markup = render_alert(s, max_length=max_length)
    assert utf16(markup) <= max_length
    text, entities = parse_html(markup) if markup.strip() else ("", 0)
    assert utf16(text) <= max_length
    assert entities <= MAX_BOLD + 2


# --- digests ---------------------------------------------------------------------------------


def test_a_digest_lists_each_story_on_one_line() -> None:
    stories = [
        story(id=1, title="HKMA <stablecoin> & you", sources=("A", "B", "C"), published=AT),
        story(id=2, title="深圳 e-CNY 试点", link="javascript:alert(1)"),
    ]
    [(markup, count)] = render_digest(stories, tz=HKT)
    assert count == 2
    visible, entities = parse_html(markup)
    assert visible.splitlines() == [
        "Digest: 2 alerts",
        "• HKMA <stablecoin> & you — A, B +1 more · 28 Nov 18:15",
        "• 深圳 e-CNY 试点",
    ]
    assert f'<a href="{LINK}">HKMA &lt;stablecoin&gt; &amp; you</a>' in markup
    assert "javascript" not in markup
    assert entities == 2  # the heading and one link


def test_a_digest_speaks_the_chats_language() -> None:
    s = story(sources=tuple(f"S{n}" for n in range(4)), title="", published=AT)
    [(markup, _)] = render_digest([s], after_mute=True, lang="zh-hant", tz=HKT)
    assert parse_html(markup)[0] == (
        f"靜音期間：1 則提醒\n• {LINK} — S0, S1 等 2 個 · 11月28日 18:15"
    )


@given(
    titles=st.lists(st.text(min_size=0, max_size=400), min_size=1, max_size=120),
    link=st.sampled_from([LINK, "https://example.org/" + "x" * 1200, "ftp://x"]),
)
@settings(max_examples=40, deadline=None)
def test_digest_pages_fit_telegram_and_keep_every_story_in_order(
    titles: list[str], link: str
) -> None:
    stories = [story(id=n, title=t, link=link) for n, t in enumerate(titles)]
    pages = render_digest(stories)
    assert sum(count for _, count in pages) == len(stories)
    for n, (markup, count) in enumerate(pages, 1):
        visible, entities = parse_html(markup)  # valid Telegram HTML
        assert utf16(markup) <= 4096 and utf16(visible) <= 4096
        assert entities < 100 and 1 <= count <= DIGEST_LINES
        assert len(visible.splitlines()) == count + 1
        if len(pages) > 1:
            assert visible.splitlines()[0].endswith(f"({n}/{len(pages)})")

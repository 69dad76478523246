"""Folding and HTML-to-text: what the matcher compares."""

from __future__ import annotations

import time
import unicodedata

import opencc
from hypothesis import given
from hypothesis import strategies as st

from bot.text import (
    _visible_text,
    _visible_text_exact,
    char_variants,
    fold,
    fold_width_case,
    html_to_text,
    match_form,
)

T2S = opencc.OpenCC("t2s")


def test_fold_makes_traditional_simplified_and_fullwidth_one() -> None:
    assert fold("粵港澳大灣區") == fold("粤港澳大湾区") == "粤港澳大湾区"
    assert fold("ＨＫＭＡ　轉數快") == "hkma 转数快"


def test_fold_casefolds() -> None:
    assert fold("e-CNY Straße") == "e-cny strasse"


def test_fold_width_case_keeps_traditional() -> None:
    assert fold_width_case("ＨＫ金管局灣區") == "hk金管局灣區"


def test_match_form_reads_dashes_as_hyphens_and_collapses_whitespace() -> None:
    assert match_form("e\u2013CNY  and\n\tHong_Kong") == "e-cny and hong-kong"


def test_char_variants_lists_the_simplified_character_first() -> None:
    assert char_variants()["湾"][0] == "湾"
    assert "灣" in char_variants()["湾"]


def test_html_to_text_drops_tags_scripts_and_decodes_entities() -> None:
    markup = "<p>HKMA &amp; SFC</p><script>x()</script><div>金管局&nbsp;公布</div>"
    assert html_to_text(markup) == "HKMA & SFC 金管局 公布"


def test_html_to_text_decodes_entities_exactly_once() -> None:
    assert html_to_text("<p>&amp;lt;b&amp;gt; &lt;i&gt;</p>") == "&lt;b&gt; <i>"
    assert html_to_text("R&amp;amp;D") == "R&amp;D"  # the no-"<" path too


def test_html_to_text_decodes_no_entity_across_a_tag() -> None:
    assert html_to_text("&not<b>in;</b>") == "¬in;"  # not &notin; (∉)


def test_html_to_text_block_tags_separate_inline_tags_join() -> None:
    markup = "<p>a</p><p>b</p>c<b>d</b>e<br/>f<BR>g<hr>h</p class='x'>i"
    assert html_to_text(markup) == "a b cde f g h i"


def test_html_to_text_reads_tag_names_in_any_case() -> None:
    assert html_to_text("<P>One</P><SCRIPT>x()</SCRIPT><Div>Two</dIV>") == "One Two"


def test_html_to_text_script_content_is_not_markup() -> None:
    markup = '<script>if (a<b && c>d) { s = "</p>"; }</script >after<style>p{}</STYLE>'
    assert html_to_text(markup) == "after"
    assert html_to_text("a<script>b<p>c") == "a"  # unclosed: dropped to the end
    assert html_to_text("a<script>b<c") == "a"


def test_html_to_text_counts_nested_skip_elements() -> None:
    markup = "<head><title>T</title><style>s</style></head><p>body</p>"
    assert html_to_text(markup) == "body"
    assert html_to_text("<title>a<title>b</title>c</title>d") == "d"
    assert html_to_text("x<noscript>a<p>b</p></noscript>y") == "x y"
    assert html_to_text("<title/>shown") == "shown"


def test_html_to_text_drops_comments_declarations_and_cdata() -> None:
    markup = '<!DOCTYPE html><?xml version="1.0"?>a<!-- <p>hidden</p> -->b<![CDATA[raw]]>c'
    assert html_to_text(markup) == "abc"
    assert html_to_text("<![if !IE]>x<![endif]>y") == "xy"


def test_html_to_text_keeps_a_greater_than_sign_inside_quoted_attributes() -> None:
    assert html_to_text("<a title=\"x > y\" href='/?a>b'>link</a>!") == "link!"


def test_html_to_text_keeps_what_is_no_markup_as_text() -> None:
    assert html_to_text("1 < 2 <3 and a<b") == "1 < 2 <3 and a<b"
    assert html_to_text("x </b") == "x </b"
    assert html_to_text("a<!-- b > c") == "a<!-- b > c"  # unclosed comment: text to ">"
    assert html_to_text("a<!-- b") == "a<!-- b"
    assert html_to_text('x <a href="y>z') == 'x <a href="y>z'  # unclosed quote


def test_html_to_text_is_linear_in_lt_signs_with_no_gt_after_them() -> None:
    markup = "<p>x</p>" + "<a " * 20_000  # html.parser took 30 s over this
    started = time.perf_counter()
    assert html_to_text(markup) == "x " + " ".join(["<a"] * 20_000)
    assert time.perf_counter() - started < 1


# Markup pieces, "|"-separated: tags, skip elements, comments, broken constructs, entities.
_PIECES = (
    "<p>|</p>|<br/>|<b>|</B>|<title>|</title>|<title/>|<head>|</noscript>|<script>|</script>|"
    "<!--|-->|<![CDATA[|]]>|<!x>|<a href='>'>|<a b=\"|</p x>|<|>|/|=|&amp;|&lt|;|a| |\n|灣"
).split("|")
_MARKUP = st.lists(st.sampled_from(_PIECES), max_size=12).map("".join)


@given(_MARKUP)
def test_html_to_text_fast_path_agrees_with_the_exact_path(markup: str) -> None:
    assert " ".join(_visible_text(markup).split()) == " ".join(_visible_text_exact(markup).split())


_CHARS = st.sampled_from(
    list("香港金融管理局粵港澳大灣區穩定幣數字人民幣ＡＢｃ１，。 -é\u3000Straßeǅ")
)


@given(st.text(_CHARS, max_size=40))
def test_fold_equals_the_plain_definition(text: str) -> None:
    reference = T2S.convert(unicodedata.normalize("NFKC", text).casefold())
    assert fold(text) == reference

"""Folding and HTML-to-text: what the matcher compares."""

from __future__ import annotations

import unicodedata

import opencc
from hypothesis import given
from hypothesis import strategies as st

from bot.text import char_variants, fold, fold_width_case, html_to_text, match_form

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


_CHARS = st.sampled_from(
    list("香港金融管理局粵港澳大灣區穩定幣數字人民幣ＡＢｃ１，。 -é\u3000Straßeǅ")
)


@given(st.text(_CHARS, max_size=40))
def test_fold_equals_the_plain_definition(text: str) -> None:
    reference = T2S.convert(unicodedata.normalize("NFKC", text).casefold())
    assert fold(text) == reference

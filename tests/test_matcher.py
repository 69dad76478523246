"""Matching semantics, one test per rule feature, plus script/width invariance (hypothesis)."""

from __future__ import annotations

from pathlib import Path

import opencc
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.matcher import Matcher
from bot.model import AllOf, AnyOf, Entry, Feed, Hit, Keyword, NotOf
from bot.model import Node as RuleNode
from bot.rulebook import build_rulebook
from bot.rulefiles import load_rules
from bot.text import fold

FEED = Feed("https://a.example/rss", "A News", ("hk", "regulator"))
OTHER = Feed("https://b.example/rss", "B News", ("mainland",))


def matcher(topics: str, feeds: tuple[Feed, ...] = (FEED, OTHER)) -> Matcher:
    rulebook, problems = build_rulebook({"t.yaml": "topics:\n" + topics}, feeds)
    assert rulebook is not None, problems
    return Matcher.compile(rulebook)


def keywords(*words: str) -> Matcher:
    items = ", ".join(f'"{w}"' for w in words)
    return matcher(f"  - id: t\n    match:\n      any: [{items}]\n")


def hits(m: Matcher, title: str, feed: Feed = FEED, **fields: object) -> tuple[Hit, ...]:
    return m.match(Entry(None, "https://x.example/1", title, **fields), feed)  # type: ignore[arg-type]


def matched(m: Matcher, title: str, **fields: object) -> tuple[str, ...]:
    found = hits(m, title, **fields)
    return found[0].keywords if found else ()


def test_case_insensitive() -> None:
    assert matched(keywords("HKMA"), "the hkma said") == ("HKMA",)


def test_full_width_is_half_width() -> None:
    assert matched(keywords("HKMA"), "ＨＫＭＡ公布") == ("HKMA",)
    assert matched(keywords("ＧＢＡ"), "GBA plan") == ("ＧＢＡ",)


def test_traditional_is_simplified_both_ways() -> None:
    assert matched(keywords("粤港澳大湾区"), "粵港澳大灣區發展") == ("粤港澳大湾区",)
    assert matched(keywords("轉數快"), "转数快升级") == ("轉數快",)
    assert matched(keywords("粤港澳大湾区"), "粤港澳大灣區 mixed scripts") == ("粤港澳大湾区",)


def test_latin_keywords_are_whole_words_even_beside_cjk() -> None:
    m = keywords("GBA")
    assert matched(m, "在GBA發展") == ("GBA",)
    assert matched(m, "GBAS launch") == ()
    assert matched(m, "the SGBA") == ()
    assert matched(m, "GBA2") == ()
    assert matched(m, "(GBA)") == ("GBA",)


def test_cjk_keywords_are_substrings() -> None:
    assert matched(keywords("金管局"), "香港金管局今日宣布") == ("金管局",)


def test_mixed_keyword_checks_only_its_latin_edge() -> None:
    m = keywords("e-HKD试点")
    assert matched(m, "推出e-HKD試點計劃") == ("e-HKD试点",)
    assert matched(m, "推出fe-HKD試點") == ()


def test_space_and_hyphen_are_flexible_inside_phrases() -> None:
    m = keywords("e-CNY")
    for text in ("e-CNY pilot", "e CNY pilot", "eCNY pilot", "E–CNY pilot", "e_CNY"):
        assert matched(m, text) == ("e-CNY",), text
    assert matched(keywords("Hong Kong"), "Hong-Kong and HongKong") == ("Hong Kong",)
    assert matched(m, "the ecnys") == ()


def test_whitespace_runs_in_text_are_one_space() -> None:
    assert matched(keywords("Bond Connect"), "Bond\n   Connect") == ("Bond Connect",)


def test_regex_keywords_are_case_insensitive_and_folded() -> None:
    m = keywords("re:regulatory sandbox(es)?", "re:監管沙盒")
    assert matched(m, "New Regulatory Sandboxes") == ("re:regulatory sandbox(es)?",)
    assert matched(m, "监管沙盒试点") == ("re:監管沙盒",)
    assert matched(m, "sandbox") == ()


def test_all_any_not_and_implicit_and() -> None:
    m = matcher(
        "  - id: t\n    match:\n      all:\n        - any: [Hong Kong, 深圳]\n"
        "        - any: [fintech, 金融科技]\n      not:\n        any: [casino]\n"
    )
    assert matched(m, "Hong Kong fintech week") == ("Hong Kong", "fintech")
    assert matched(m, "深圳金融科技") == ("深圳", "金融科技")
    assert matched(m, "Hong Kong property") == ()
    assert matched(m, "Hong Kong fintech casino") == ()


def test_nested_not_inside_all() -> None:
    m = matcher("  - id: t\n    match:\n      all: [fintech, {not: {all: [Shanghai, sandbox]}}]\n")
    assert matched(m, "fintech Shanghai") == ("fintech",)
    assert matched(m, "fintech Shanghai sandbox") == ()


def test_keywords_in_rule_order_deduplicated_and_only_from_true_branches() -> None:
    m = matcher(
        "  - id: t\n    match:\n      any:\n        - all: [stablecoin, never]\n"
        "        - any: [HKMA, 金管局]\n        - any: [hkma, fintech]\n"
    )
    assert matched(m, "fintech: 金管局 and HKMA on stablecoin") == ("HKMA", "金管局", "fintech")


def test_fields_scope_and_no_match_across_fields() -> None:
    m = matcher("  - id: t\n    match: Hong Kong\n    fields: [summary]\n")
    assert matched(m, "Hong Kong", summary="nothing") == ()
    assert matched(m, "x", summary="in Hong Kong") == ("Hong Kong",)
    both = keywords("Hong Kong")
    assert matched(both, "Hong", summary="Kong") == ()


def test_tags_and_link_fields() -> None:
    m = matcher(
        "  - id: t\n    match: fintech\n    fields: [tags]\n"
        "  - id: u\n    match: hkma\n    fields: [link]\n"
    )
    entry = Entry(None, "https://www.hkma.gov.hk/x", "title", tags=("Fintech", "Banks"))
    assert m.match(entry, FEED) == (Hit("t", ("fintech",)), Hit("u", ("hkma",)))


def test_feeds_scope_by_tag_name_and_url() -> None:
    m = matcher(
        "  - id: by-tag\n    match: fintech\n    feeds: [tag:regulator]\n"
        "  - id: by-name\n    match: fintech\n    feeds: [B News]\n"
        "  - id: by-url\n    match: fintech\n    feeds: [https://a.example/rss]\n"
        "  - id: all\n    match: fintech\n"
    )
    assert [h.topic_id for h in hits(m, "fintech", FEED)] == ["by-tag", "by-url", "all"]
    assert [h.topic_id for h in hits(m, "fintech", OTHER)] == ["by-name", "all"]


def test_topic_of_only_not_matches_everything_else() -> None:
    m = matcher("  - id: t\n    match:\n      not: casino\n")
    assert hits(m, "anything") == (Hit("t", ()),)
    assert hits(m, "casino news") == ()


def test_one_hit_per_topic_in_rule_order() -> None:
    m = matcher("  - id: b\n    match: GBA\n  - id: a\n    match: [fintech, GBA]\n")
    assert hits(m, "GBA fintech") == (Hit("b", ("GBA",)), Hit("a", ("fintech", "GBA")))


S2T = opencc.OpenCC("s2t")
S2HK = opencc.OpenCC("s2hk")
VOCAB = [
    "粤港澳大湾区",
    "金融科技",
    "数字人民币",
    "稳定币",
    "跨境理财通",
    "虚拟资产",
    "金管局",
    "横琴",
    "前海",
    "证监会",
    "转数快",
    "香港",
    "深圳",
    "hkma",
    "e-cny",
    "gba",
    "fintech",
]
FILLER = ["今日", "宣布", "发展", "银行", "市场", " ", "，", "the", "plan", "1"]
RULES = matcher(
    "".join(
        f"  - id: t{i}\n    match:\n      all: [{a}, {{not: {c}}}]\n      any: [{b}, {d}]\n"
        for i, (a, b, c, d) in enumerate(
            zip(
                VOCAB,
                VOCAB[3:] + VOCAB[:3],
                VOCAB[7:] + VOCAB[:7],
                VOCAB[11:] + VOCAB[:11],
                strict=True,
            )
        )
    )
)


def full_width(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


@settings(max_examples=200)
@given(st.lists(st.sampled_from(VOCAB + FILLER), max_size=30))
def test_traditional_simplified_and_full_width_give_the_same_hits(words: list[str]) -> None:
    simplified = "".join(words)
    expected = hits(RULES, simplified)
    assert hits(RULES, S2T.convert(simplified)) == expected
    assert hits(RULES, S2HK.convert(simplified)) == expected
    assert hits(RULES, full_width(simplified)) == expected


SHIPPED = load_rules(Path(__file__).resolve().parents[1] / "rules")
PACK = Matcher.compile(SHIPPED)


def literal_keywords(node: RuleNode) -> set[str]:
    """Every literal keyword of a tree, folded (Simplified, lower case)."""
    if isinstance(node, Keyword):
        return set() if node.regex else {fold(node.text)}
    if isinstance(node, NotOf):
        return literal_keywords(node.child)
    assert isinstance(node, AnyOf | AllOf)
    return set().union(*(literal_keywords(c) for c in node.children))


PACK_WORDS = sorted(set().union(*(literal_keywords(t.match) for t in SHIPPED.topics)))


@settings(max_examples=300)
@given(st.lists(st.sampled_from(PACK_WORDS + FILLER), min_size=1, max_size=12))
def test_the_default_pack_gives_the_same_hits_in_every_script_and_width(words: list[str]) -> None:
    simplified = " ".join(words)
    expected = PACK.match(Entry(None, "", simplified), FEED)
    for variant in (S2T.convert(simplified), S2HK.convert(simplified), full_width(simplified)):
        assert PACK.match(Entry(None, "", variant), FEED) == expected, variant


def test_a_runaway_pattern_runs_in_linear_time() -> None:
    # (a+)+$ takes 2^n steps in a backtracking engine on "aaa...a!"; RE2 answers at once
    # (a backtracking engine would hit the test timeout here).
    m = keywords("re:(a+)+$")
    assert matched(m, "a" * 40 + "!") == ()
    assert matched(m, "x aaaa") == ("re:(a+)+$",)

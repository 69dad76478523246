"""parse.py: fixtures with their expectations, hostile documents, and the real feeds."""

from __future__ import annotations

import json
import pickle
import random
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.errors import ParseError
from bot.model import Entry
from bot.parse import ParsedFeed, parse_feed, strip_doctype

FIXTURES = Path(__file__).parent / "data" / "feeds"
REAL_FEEDS = Path(__file__).resolve().parents[2] / "shared" / "data" / "feeds"
FIXTURE_URL = "https://wire.example.org/feeds/main.xml"


def _entry_as_json(entry: Entry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "link": entry.link,
        "title": entry.title,
        "summary": entry.summary,
        "content": entry.content,
        "published": entry.published.isoformat() if entry.published else None,
        "tags": list(entry.tags),
    }


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*.xml")), ids=lambda p: p.stem)
def test_fixture(path: Path) -> None:
    """Each NAME.xml parses as NAME.expected.json says (keys it leaves out are not checked)."""
    expected = json.loads(path.with_suffix(".expected.json").read_text(encoding="utf-8"))
    url = expected.get("url", FIXTURE_URL)
    headers = expected.get("headers", {})
    if "error" in expected:
        with pytest.raises(ParseError, match=re.escape(expected["error"])):
            parse_feed(path.read_bytes(), url=url, headers=headers)
        return
    parsed = parse_feed(path.read_bytes(), url=url, headers=headers)
    assert parsed.title == expected["title"]
    if "warning" in expected:
        if expected["warning"] is None:
            assert parsed.warning is None
        else:
            assert expected["warning"] in (parsed.warning or "")
    assert len(parsed.entries) == len(expected["entries"])
    for entry, want in zip(parsed.entries, expected["entries"], strict=True):
        got = _entry_as_json(entry)
        assert {key: got[key] for key in want} == want


def test_every_fixture_has_an_expectation() -> None:
    docs = {p.stem for p in FIXTURES.glob("*.xml")}
    expectations = {p.name.removesuffix(".expected.json") for p in FIXTURES.glob("*.json")}
    assert docs == expectations


def test_result_is_picklable_for_a_process_pool() -> None:
    parsed = parse_feed(
        (FIXTURES / "rss_traditional_chinese.xml").read_bytes(), url=FIXTURE_URL, headers={}
    )
    assert pickle.loads(pickle.dumps(parsed)) == parsed  # noqa: S301 (our own bytes)
    assert all(e.published is None or e.published.tzinfo is UTC for e in parsed.entries)


# --- Hostile documents -------------------------------------------------------------------


def _rss(item_title: str, description: str = "", doctype: str = "") -> bytes:
    return (
        f'<?xml version="1.0"?>\n{doctype}\n<rss version="2.0"><channel><title>t</title>'
        f"<item><title>{item_title}</title><description>{description}</description>"
        "<link>http://wire.example.org/1</link></item></channel></rss>"
    ).encode()


def test_billion_laughs_is_not_expanded() -> None:
    levels = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{n} "{f"&lol{n - 1};" * 10}">' for n in range(1, 6)
    ]
    doc = _rss("laughs &lol5;", doctype="<!DOCTYPE rss [\n" + "\n".join(levels) + "\n]>")
    parsed = parse_feed(doc, url=FIXTURE_URL, headers={})
    assert len(parsed.entries) == 1
    assert "lollol" not in parsed.entries[0].title


def test_big_internal_entity_is_not_expanded() -> None:
    # Small enough to finish quickly if the DOCTYPE were kept (10 MB of text), so a
    # regression fails on the assertion instead of hanging for a minute.
    doctype = '<!DOCTYPE rss [\n<!ENTITY big "' + "x" * 10_000 + '">\n]>'
    parsed = parse_feed(_rss("big", "&big;" * 1000, doctype), url=FIXTURE_URL, headers={})
    assert len(parsed.entries) == 1
    assert "xxxxxxxxxx" not in parsed.entries[0].summary
    assert len(parsed.entries[0].summary) < 10_000


def test_external_entity_target_never_appears(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-TARGET-TEXT", encoding="utf-8")
    for declaration in (
        f'<!ENTITY xxe SYSTEM "{secret.as_uri()}">',
        f'<!ENTITY % xxe SYSTEM "{secret.as_uri()}"> %xxe;',
    ):
        doc = _rss("x &xxe;", "&xxe;", f"<!DOCTYPE rss [ {declaration} ]>")
        parsed = parse_feed(doc, url=FIXTURE_URL, headers={})
        assert "TOP-SECRET" not in repr(parsed)


def test_external_dtd_is_not_fetched(tmp_path: Path) -> None:
    dtd = tmp_path / "evil.dtd"
    dtd.write_text('<!ENTITY leak "TOP-SECRET-DTD-TEXT">', encoding="utf-8")
    doc = _rss("x &leak;", doctype=f'<!DOCTYPE rss SYSTEM "{dtd.as_uri()}">')
    assert "TOP-SECRET" not in repr(parse_feed(doc, url=FIXTURE_URL, headers={}))


@pytest.mark.parametrize(
    ("doc", "kept"),
    [
        (b'<!DOCTYPE rss [<!ENTITY a "]>">]><rss/>', b"<rss/>"),
        (b"<?xml version='1.0'?><!-- c --><!DOCTYPE rss [<!-- don't ]> -->]>\n<rss/>", b"<rss/>"),
        (b"<!DOCTYPE rss>\n<rss/>", b"\n<rss/>"),
        (b"<rss><!DOCTYPE not-in-prolog></rss>", b"<!DOCTYPE not-in-prolog>"),
        (b"<!DOCTYPE rss [ <!ENTITY a 'unterminated", b""),
    ],
)
def test_strip_doctype(doc: bytes, kept: bytes) -> None:
    stripped = strip_doctype(doc)
    assert kept in stripped
    assert b"ENTITY" not in stripped


def test_doctype_in_utf16_is_stripped_too() -> None:
    doctype = '<!DOCTYPE rss [\n<!ENTITY big "' + "y" * 1000 + '">\n]>'
    doc = _rss("wide", "&big;" * 100, doctype).decode().encode("utf-16")
    parsed = parse_feed(doc, url=FIXTURE_URL, headers={})
    assert "yyyy" not in parsed.entries[0].summary


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "empty document"),
        (b"  \r\n\t ", "empty document"),
        (b"<html><body><p>Not here</p></body></html>", "HTML page"),
        (random.Random(4).randbytes(4096), "no feed entries"),
        (b'{"items": [{"title": "json"}]}', "no feed entries"),
        (b'<?xml version="1.0"?><rss version="2.0"><channel><title>cut', "no feed entries"),
    ],
    ids=["empty", "blank", "html", "random-bytes", "json", "truncated-without-items"],
)
def test_not_a_feed_raises_parse_error(body: bytes, message: str) -> None:
    with pytest.raises(ParseError, match=message) as caught:
        parse_feed(body, url="https://wire.example.org/x", headers={"content-type": "text/html"})
    assert "https://wire.example.org/x" in str(caught.value)


def test_bozo_with_entries_is_a_warning() -> None:
    doc = _rss("ok").replace(b"</rss>", b"</rss")
    parsed = parse_feed(doc, url=FIXTURE_URL, headers={})
    assert [e.title for e in parsed.entries] == ["ok"]
    assert parsed.warning


# --- The real feeds in ../shared/data/feeds ------------------------------------------------

needs_real_feeds = pytest.mark.skipif(not REAL_FEEDS.is_dir(), reason="shared/data/feeds absent")


def _real(name: str, url: str = "https://news.example.org/feed.xml") -> ParsedFeed:
    return parse_feed((REAL_FEEDS / name).read_bytes(), url=url, headers={})


@needs_real_feeds
@pytest.mark.parametrize(
    ("name", "count", "title"),
    [
        ("rthk_finance_en_20250410_dup_titles.rss.xml", 60, "rthk - Finance"),
        ("rthk_finance_en_20241025_no_guid.rss.xml", 60, "rthk - Finance"),
        ("rthk_finance_zh-hk_20250328.rss.xml", 60, "rthk - 財經"),
        ("rthk_greaterchina_zh-hk_20250115.rss.xml", 60, "rthk - 大中華"),
        ("tdm_macau_news_zh-mo_20241026.atom.xml", 447, "澳門電台新聞"),
    ],
)
def test_real_news_feeds(name: str, count: int, title: str) -> None:
    parsed = _real(name)
    assert parsed.title == title
    assert parsed.warning is None
    assert len(parsed.entries) == count
    for entry in parsed.entries:
        assert entry.title and entry.title == entry.title.strip()
        assert "\n" not in entry.title
        assert entry.link.startswith("https://")
        assert not re.search(r"\.(jpe?g|png|gif)$", entry.link, re.IGNORECASE)
        assert "<" not in entry.summary + entry.content
        assert entry.summary or entry.content
        assert entry.published is not None and entry.published.tzinfo is UTC


@needs_real_feeds
def test_real_rthk_english_entries() -> None:
    parsed = _real("rthk_finance_en_20250410_dup_titles.rss.xml")
    titles = [e.title for e in parsed.entries]
    assert "AI to turbocharge fintech growth in Asia: Paul Chan" in titles
    assert titles.count("Hong Kong stocks close lower") >= 2
    assert len({e.link for e in parsed.entries}) == 60
    assert all(e.id == e.link for e in parsed.entries)
    no_guid = _real("rthk_finance_en_20241025_no_guid.rss.xml")
    assert all(e.id is None for e in no_guid.entries)
    assert "<body>" not in no_guid.entries[0].summary
    assert no_guid.entries[0].summary.startswith("Financial Secretary Paul Chan has concluded")


@needs_real_feeds
def test_real_chinese_text_is_intact() -> None:
    finance = [e.title for e in _real("rthk_finance_zh-hk_20250328.rss.xml").entries]
    assert "金管局冀穩定幣相關法案未來幾個月獲立法會通過" in finance
    china = [e.title for e in _real("rthk_greaterchina_zh-hk_20250115.rss.xml").entries]
    assert "本港轉數快最快年中與內地網上支付跨行清算系統互聯" in china


@needs_real_feeds
def test_real_tdm_atom() -> None:
    entries = _real("tdm_macau_news_zh-mo_20241026.atom.xml").entries
    first = entries[0]
    assert first.id == "1020939"
    assert first.link == "https://www.tdm.com.mo/zh-hant/sharelink/news/1020939"
    assert first.title == "王毅：同意全面恢復中英各領域對話合作"
    assert first.content.startswith("(澳門電台消息) 中共中央政治局委員")
    # 2024-10-19T06:20:00+07:34 is 2024-10-18T22:46 UTC: the odd offset is applied, not lost.
    assert first.published == datetime(2024, 10, 18, 22, 46, tzinfo=UTC)
    titles = [e.title for e in entries]
    assert titles.count("波蘭禽流感疫區禽肉產品禁入澳") == 2
    assert all(e.link.startswith("https://www.tdm.com.mo/") for e in entries)


@needs_real_feeds
@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("feedparser_illformed_chardet_big5.xml", "我希望"),
        ("feedparser_illformed_chardet_gb2312.xml", "不归移民漫画系列：专业工作"),
    ],
)
def test_real_undeclared_cjk_encodings(name: str, text: str) -> None:
    parsed = _real(name)
    assert text in parsed.title + "".join(e.title for e in parsed.entries)


@needs_real_feeds
def test_real_feedparser_quirks() -> None:
    assert _real("feedparser_encoding_bozo_double-encoded-html.xml").entries[0].summary == "…"
    link = _real("feedparser_illformed_rss_item_link_corrupted_ampersands.xml").entries[0].link
    assert link == "http://link/get?a=1&b=2"
    titled = _real("feedparser_wellformed_atom10_entry_title_escaped_markup.xml")
    assert titled.entries[0].title == "Example Atom"
    inherit = _real("feedparser_wellformed_atom10_relative_uri_inherit.xml")
    assert (inherit.title, inherit.entries, inherit.warning) == ("Example test", (), None)

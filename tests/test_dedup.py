from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.dedup import canonical_url, entry_key, title_key
from bot.model import Entry


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("HTTPS://WWW.Example.COM:443/a?b=2&a=1#frag", "https://www.example.com/a?a=1&b=2"),
        ("http://example.com:80", "http://example.com/"),
        ("http://example.com:8080/x", "http://example.com:8080/x"),
        (
            "https://x.hk/n?id=5&utm_source=tw&utm_MEDIUM=s&fbclid=abc&gclid=1",
            "https://x.hk/n?id=5",
        ),
        ("https://x.hk/Path/Case", "https://x.hk/Path/Case"),
        ("", ""),
    ],
)
def test_canonical_url(url: str, expected: str) -> None:
    assert canonical_url(url) == expected


def test_title_key_folds_width_case_script_and_punctuation() -> None:
    assert title_key("金管局：穩定幣條例生效") == title_key("金管局:稳定币条例生效")
    assert title_key("HKMA Launches  e-HKD Pilot!") == title_key("hkma launches e-hkd pilot")
    assert title_key("ＨＫＭＡ launches e-HKD pilot") == title_key("HKMA launches e-HKD pilot")


def test_short_titles_give_no_key() -> None:
    assert title_key("Markets") == ""
    assert title_key("快訊") == ""


def test_entry_key_prefers_guid_then_link_then_hash() -> None:
    when = datetime(2026, 1, 1, tzinfo=UTC)
    assert entry_key(Entry(id=" g1 ", link="http://x/1", title="t")) == "g1"
    assert entry_key(Entry(id=None, link=" http://x/1#a1 ", title="t")) == "http://x/1#a1"
    assert entry_key(Entry(id=None, link="http://x/1#a1", title="t")) != entry_key(
        Entry(id=None, link="http://x/1#b2", title="t")
    )
    a = entry_key(Entry(id=None, link="", title="t", published=when))
    b = entry_key(Entry(id=None, link="", title="t", published=None))
    assert a.startswith("sha256:") and a != b


def test_items_with_only_a_description_get_distinct_keys() -> None:
    one = Entry(id=None, link="", title="", summary="First notice")
    two = Entry(id=None, link="", title="", summary="Second notice")
    assert entry_key(one) != entry_key(two)

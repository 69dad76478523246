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


def test_title_index_finds_exactly_what_a_full_scan_finds() -> None:
    """The index's shortcuts (rarest shingles, equal numbers) lose no near duplicate and
    rank as the full scan does: most shared shingles, then the lowest id."""
    import random

    from bot.dedup import MIN_SHARED_SHINGLES, TitleIndex, similar_signatures, title_signature

    rng = random.Random(4)
    words = (
        "hong kong stocks close lower higher hkma stablecoin licence 恒 指 收 市 跌 升 點 "
        "金 管 局 發 出 首 批 穩 定 幣 牌 照 200 350 11 15 0.4 rate outlook"
    ).split()
    titles = [" ".join(rng.choice(words) for _ in range(rng.randint(1, 14))) for _ in range(600)]
    titles += [t.replace(t.split()[0], rng.choice(words), 1) for t in titles[:300]]
    index = TitleIndex()
    stored = {}
    for title_id, title in enumerate(titles[:600], 1):
        index.add(title_id, title, float(title_id))
        stored[title_id] = title_signature(title)

    def scan(title: str, since: float = 0) -> list[tuple[int, int]]:
        sig = title_signature(title)
        return sorted(
            (-len(sig.shingles & other.shingles), i)
            for i, other in stored.items()
            if i >= since and similar_signatures(sig, other)
        )

    found = [index.similar(title_signature(t)) for t in titles[600:]]
    assert found == [scan(t) for t in titles[600:]]
    assert any(found)
    index.prune(300.0)
    # Titles too short to share MIN_SHARED_SHINGLES shingles with anything are not kept.
    long_enough = [i for i, sig in stored.items() if len(sig.shingles) >= MIN_SHARED_SHINGLES]
    assert len(index) == sum(1 for i in long_enough if i >= 300) < 301
    assert [index.similar(title_signature(t)) for t in titles[600:]] == [
        scan(t, since=300) for t in titles[600:]
    ]

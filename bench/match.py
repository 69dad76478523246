"""Matching speed: entries/s for the default pack and for a generated 5,000-keyword rulebook.

10,000 generated entries of ~1,000 characters (English, Simplified and Traditional Chinese,
with English terms inside Chinese text), folding included, one core. Prints the median of
several runs. Goals: >= 20,000 entries/s (default pack), >= 10,000 (5,000 keywords).

    python bench/match.py [--entries N] [--runs N]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import opencc  # noqa: E402

from bot.matcher import Matcher  # noqa: E402
from bot.model import AllOf, AnyOf, Entry, Feed, Keyword, NotOf, Topic  # noqa: E402
from bot.rulebook import Rulebook  # noqa: E402
from bot.rulefiles import load_rules  # noqa: E402

EN_WORDS = (
    "the bank said on monday that its new payment service for small firms in the region "
    "would expand next quarter as regulators review market rules and investors weigh "
    "growth risks amid trade tension officials added data showed prices rose slightly"
).split()
ZH_TEXT = (
    "当局今日宣布，有关计划的优化措施将于下月实施。业界表示市场需求持续增长，"
    "监管机构正研究相关发展框架；投资者关注利率走势与经济数据。政府表示，"
    "将继续推动产业发展，加强与各地合作，吸引更多企业落户并创造就业机会。"
    "分析师认为，今年下半年消费回暖，出口订单稳定，旅游业复苏步伐加快。"
)
PLACES = (
    "Hong Kong",
    "Shenzhen",
    "GBA",
    "HKMA",
    "Macau",
    "香港",
    "深圳",
    "大湾区",
    "金管局",
    "横琴",
)
SUBJECTS = ("fintech", "e-CNY", "stablecoin", "金融科技", "数字人民币", "稳定币", "虚拟资产")


def big_rulebook(
    keywords: int = 5000, per_topic: int = 50, seed: int = 11
) -> tuple[Rulebook, list[tuple[str, str]]]:
    """Topics of ``all: [any: subjects, any: places], not: [word]`` over random words.

    Returns the rulebook and, per topic, its first subject and its first place: entries that
    name both match that topic, so the big rulebook does real work on a share of entries.
    """
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    han = "粤港澳湾区前海南沙珠海广州东莞佛山惠州中山江门肇庆金融科技数字货币跨境支付银行证券保险"

    def word(j: int) -> str:
        if j % 2:
            return "".join(rng.choice(han) for _ in range(rng.randint(3, 4)))
        size = rng.randint(5, 9)
        text = "".join(rng.choice(letters) for _ in range(size))
        return text if j % 4 else text[:3] + " " + text[3:]

    words = [word(j) for j in range(keywords)]
    topics, pairs = [], []
    half = per_topic // 2
    for t in range(keywords // per_topic):
        chunk = words[t * per_topic : (t + 1) * per_topic]
        match = AllOf(
            (
                AnyOf(tuple(Keyword(w) for w in chunk[:half])),
                AnyOf(tuple(Keyword(w) for w in chunk[half:])),
                NotOf(AnyOf((Keyword(rng.choice(words)),))),
            )
        )
        topics.append(Topic(id=f"t{t}", title=f"t{t}", match=match))
        pairs.append((rng.choice(chunk[:half]), rng.choice(chunk[half:])))
    return Rulebook(tuple(topics)), pairs


def terms(rng: random.Random, pairs: list[tuple[str, str]]) -> str:
    """What an entry mentions besides ordinary news text.

    30% name a GBA place, a third of those also a fintech subject (~10% match the default
    pack); independently, 30% name a subject of the big rulebook, a third of those also a
    place of the same topic (~10% match it).
    """
    found = []
    if rng.random() < 0.3:
        place = rng.choice(PLACES)
        found.append(f"{place} {rng.choice(SUBJECTS)}" if rng.random() < 1 / 3 else place)
    if rng.random() < 0.3:
        subject, place = rng.choice(pairs)
        found.append(f"{subject} {place}" if rng.random() < 1 / 3 else subject)
    return " ".join(found) or rng.choice(EN_WORDS)


def make_entries(count: int, pairs: list[tuple[str, str]], seed: int = 7) -> list[Entry]:
    """Entries of ~1,000 characters: a third each English, Simplified, Traditional.

    Ordinary news text with the ``terms`` above in the middle of it; Traditional entries are
    converted whole (OpenCC s2t), terms included, so folding is exercised on them.
    """
    rng = random.Random(seed)
    s2t = opencc.OpenCC("s2t")
    entries = []
    for i in range(count):
        kind = i % 3
        if kind == 0:
            words = [rng.choice(EN_WORDS) for _ in range(170)]
            words[rng.randrange(170)] = terms(rng, pairs)
            body = " ".join(words)
        else:
            start = rng.randrange(len(ZH_TEXT) // 2)
            body = (ZH_TEXT[start:] + ZH_TEXT) * 5
            body = body[:900] + " " + terms(rng, pairs) + "，" + body[900:980]
            if kind == 2:
                body = s2t.convert(body)
        entries.append(Entry(None, f"https://example.org/{i}", body[:60], body[60:]))
    return entries


def rate(matcher: Matcher, entries: list[Entry], runs: int) -> tuple[list[float], int, int]:
    """Entries/s of each run, hits and entries with a hit (of the last run)."""
    feed = Feed(url="https://example.org/feed", name="bench")
    rates, hits, matched = [], 0, 0
    for _ in range(runs):
        start = time.perf_counter()
        results = [matcher.match(e, feed) for e in entries]
        rates.append(len(entries) / (time.perf_counter() - start))
        hits = sum(map(len, results))
        matched = sum(1 for r in results if r)
    return rates, hits, matched


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    big, pairs = big_rulebook()
    entries = make_entries(args.entries, pairs)
    chars = sum(len(e.title) + len(e.summary) for e in entries) / len(entries)
    print(f"{len(entries)} entries, {chars:.0f} characters on average, {args.runs} runs")
    for name, rulebook, goal in (
        ("default pack", load_rules(ROOT / "rules"), 20_000),
        ("5,000 keywords", big, 10_000),
    ):
        matcher = Matcher.compile(rulebook)
        matcher.match(entries[0], Feed(url="https://example.org/feed", name="warm-up"))
        rates, hits, matched = rate(matcher, entries, args.runs)
        median = statistics.median(rates)
        spread = f"{min(rates):,.0f}-{max(rates):,.0f}"
        share = 100 * matched / len(entries)
        print(
            f"{name:>15}: {median:,.0f} entries/s median ({spread}; goal {goal:,}), "
            f"{share:.1f}% of entries match, {hits} hits"
        )


if __name__ == "__main__":
    main()

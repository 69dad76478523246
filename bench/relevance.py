"""Precision and recall of the default pack's ``gba-fintech`` topic on the labelled dev corpus.

Runs the real rules (``rules/`` through ``rulefiles.load_rules``) and the real ``Matcher`` over
``../shared/data/dev-corpus.jsonl``: headline as the entry title, summary as its summary.
Label ``relevant`` is positive; ``near_miss`` and ``irrelevant`` are negative.

    python bench/relevance.py [--rules DIR] [--corpus FILE] [--topic ID]
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.matcher import Matcher
from bot.model import Entry, Feed
from bot.rulefiles import load_rules

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "data" / "dev-corpus.jsonl"


@dataclass(frozen=True)
class Scored:
    item: dict[str, str]
    predicted: bool
    keywords: tuple[str, ...]

    @property
    def relevant(self) -> bool:
        return self.item["label"] == "relevant"


def score(rules: Path, corpus: Path, topic: str) -> list[Scored]:
    """Each corpus item with the topic's verdict and the keywords behind it."""
    matcher = Matcher.compile(load_rules(rules))
    feed = Feed(url="https://corpus.invalid/", name="corpus")
    scored = []
    for line in corpus.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        item = json.loads(line)
        entry = Entry(None, item.get("url") or "", item["headline"], item.get("summary") or "")
        hits = {h.topic_id: h.keywords for h in matcher.match(entry, feed)}
        scored.append(Scored(item, topic in hits, hits.get(topic, ())))
    return scored


def precision_recall(scored: list[Scored]) -> tuple[float, float]:
    tp = sum(s.predicted and s.relevant for s in scored)
    fp = sum(s.predicted and not s.relevant for s in scored)
    fn = sum(s.relevant and not s.predicted for s in scored)
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    return precision, recall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", type=Path, default=ROOT / "rules")
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--topic", default="gba-fintech")
    args = parser.parse_args()
    scored = score(args.rules, args.corpus, args.topic)
    precision, recall = precision_recall(scored)
    positives = sum(s.relevant for s in scored)
    print(f"{args.topic}: {len(scored)} items, {positives} relevant")
    print(f"precision {precision:.3f}  recall {recall:.3f}")
    for title, wanted in (("misses", True), ("false alarms", False)):
        wrong = [s for s in scored if s.relevant == wanted and s.predicted != wanted]
        print(f"\n{title} ({len(wrong)}):")
        for s in wrong:
            why = f"  [{', '.join(s.keywords)}]" if s.keywords else ""
            print(f"  {s.item['id']} {s.item['label']}: {s.item['headline']}{why}")


if __name__ == "__main__":
    main()

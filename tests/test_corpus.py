"""The default pack on the labelled dev corpus: precision and recall of ``gba-fintech``.

Measured when written: precision 1.000, recall 1.000 on 87 items (34 relevant). The floors
sit just below, so a rule edit that loses a relevant item or admits a near miss fails here.

The beat is also written down as headlines made up for this test (none is in the corpus):
a GBA place or GBA-wide framing AND a fintech subject is in; fintech elsewhere, the GBA
without fintech, casinos, property and drone "sandboxes" are out. They run without the
corpus, so the pack is checked everywhere.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from bot.matcher import Matcher
from bot.model import Entry
from bot.rulefiles import load_rules

ROOT = Path(__file__).resolve().parents[1]
CORPUS = Path(__file__).resolve().parents[2] / "shared" / "data" / "dev-corpus.jsonl"

IN_BEAT = [
    "HKMA grants first stablecoin issuer licences",
    "Macau launches digital pataca pilot with local banks",
    "Hong Kong dollar stablecoin sandbox names participants",
    "深圳前海推出跨境数字人民币支付试点",
    "澳門金管局推出數字澳門元試點",
    "WeChat Pay opens cross-border payments to Hong Kong visitors in Shenzhen",
    "香港證監會批出虛擬資產交易平台牌照",
    "Guangzhou Nansha unveils measures to support fintech firms",
    "SFC consults on tokenised fund products",
    "大灣區跨境理財通優化措施今起實施",
    "HKMA and PBoC expand Swap Connect",
    "Hengqin launches cross-border financial services for Macau residents",
    "香港金管局推出生成式人工智能沙盒第二期",
    "Virtual bank turns a profit in Hong Kong",
    "前海深港现代服务业合作区金融开放新举措出台",
]
OUT_OF_BEAT = [
    "San Francisco Bay Area fintech startups raise funds",
    "Shanghai launches fintech sandbox for AI lending",
    "Hong Kong home prices fall for third month",
    "Macau casino revenue jumps 20%",
    "Singapore MAS issues stablecoin framework",
    "Hong Kong drone sandbox trials begin in Cyberport",
    "深圳楼市成交回暖",
    "Bitcoin hits record as ETF inflows surge",
    "數字人民幣試點擴至上海、北京、成都等城市",
    "Hong Kong stocks close lower as tech shares slide",
    "Shenzhen carmaker unveils new electric car",
]


@pytest.mark.parametrize(
    ("headline", "relevant"),
    [(h, True) for h in IN_BEAT] + [(h, False) for h in OUT_OF_BEAT],
)
def test_the_beat(headline: str, relevant: bool) -> None:
    matcher = Matcher.compile(load_rules(ROOT / "rules"))
    hits = matcher.match(Entry(None, "", headline), None)
    assert any(h.topic_id == "gba-fintech" for h in hits) == relevant


@pytest.mark.skipif(not CORPUS.is_file(), reason="dev corpus not available")
def test_gba_fintech_precision_and_recall_on_the_dev_corpus() -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        from relevance import precision_recall, score
    finally:
        sys.path.remove(str(ROOT / "bench"))
    scored = score(ROOT / "rules", CORPUS, "gba-fintech")
    precision, recall = precision_recall(scored)
    wrong = [s.item["id"] for s in scored if s.predicted != s.relevant]
    assert len(scored) >= 80
    assert precision >= 0.97, wrong
    assert recall >= 0.97, wrong

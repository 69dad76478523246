"""``newsbot run --once`` over N local feeds: wall time and peak memory, first and unchanged.

Serves N generated feeds (30 items each, English and Chinese, a few matching the default
pack) on 127.0.0.1 and a fake Telegram Bot API, then runs the real command line twice as a
subprocess: a first poll (everything new) and a second (everything answers 304). Prints wall
time, peak RSS of the newsbot process, conditional-request share and alerts sent. Medians over
``--runs`` fresh databases.

    python bench/once.py [--feeds 100] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from fakebotapi import FakeBotApi  # noqa: E402
from feedserver import FeedServer, Item, rss  # noqa: E402

TOKEN = "123456789:AAFakeTokenForBenchmarksOnly_abcdefgh"
HEADLINES = (
    "Markets close higher as investors weigh rate outlook",
    "港股收市上升 恒指升200點",
    "City council approves new transport budget",
    "Weather: hot and humid with isolated showers",
    "内地消费数据好于预期",
)
# One item in every tenth feed matches the default pack: 10 alerts per 100 feeds, within one
# channel's 20/min budget, so the run measures polling rather than Telegram's pacing.
MATCHING = ("深圳推出新一批金融科技创新试点项目", "HKMA announces new stablecoin issuer licences")


def headline(n: int, i: int) -> str:
    if n % 10 == 0 and i == 0:
        return MATCHING[n // 10 % 2]
    return HEADLINES[(n + i) % len(HEADLINES)]


def feed_body(n: int) -> bytes:
    now = datetime.now(UTC)
    items = [
        Item(
            title=f"{headline(n, i)} ({n}-{i})",
            link=f"https://news.example/{n}/{i}",
            guid=f"{n}-{i}",
            published=now - timedelta(minutes=10 * i),
            description="<p>" + "Lorem ipsum dolor sit amet, 市场消息。 " * 20 + "</p>",
        )
        for i in range(30)
    ]
    return rss(items, title=f"Feed {n}")


def child_peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def run(config: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "bot",
            "--config",
            str(config),
            "--log-level",
            "WARNING",
            "run",
            "--once",
        ],
        check=True,
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def one_round(n_feeds: int) -> dict[str, float]:
    with FeedServer() as feeds, FakeBotApi(TOKEN) as api, tempfile.TemporaryDirectory() as tmp:
        rules = Path(tmp) / "rules"
        rules.mkdir()
        pack = (ROOT / "rules" / "gba-fintech.yaml").read_text("utf-8")
        (rules / "gba-fintech.yaml").write_text(pack, "utf-8")
        lines = ["feeds:"]
        for n in range(n_feeds):
            lines += [f"  - url: {feeds.add(f'/f{n}.xml', feed_body(n))}", f"    name: Feed {n}"]
        (rules / "feeds.yaml").write_text("\n".join(lines) + "\n", "utf-8")
        config = Path(tmp) / "newsbot.toml"
        config.write_text(
            f'[telegram]\napi_url = "{api.api_url}"\n[[telegram.channels]]\n'
            f'chat_id = -100123\ntopics = ["*"]\n[storage]\nurl = "sqlite:///{tmp}/db.sqlite"\n'
            f'[rules]\ndir = "{rules}"\n',
            "utf-8",
        )
        env = {**os.environ, "TELEGRAM_BOT_TOKEN": TOKEN}
        first = run(config, env)
        sent_first = len(api.sent)
        requests_before = len(feeds.requests)
        second = run(config, env)
        second_requests = feeds.requests[requests_before:]
        conditional = sum(r.not_modified for r in second_requests) / max(1, len(second_requests))
        return {
            "first_s": first,
            "unchanged_s": second,
            "alerts": sent_first,
            "resent": len(api.sent) - sent_first,
            "conditional": conditional,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    rounds = [one_round(args.feeds) for _ in range(args.runs)]
    med = {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}
    print(f"newsbot run --once over {args.feeds} local feeds x 30 items, {args.runs} runs (median)")
    print(f"  first poll:     {med['first_s']:.2f} s wall, {med['alerts']:.0f} alerts sent")
    print(
        f"  unchanged poll: {med['unchanged_s']:.2f} s wall, "
        f"{med['conditional']:.0%} answered 304, {med['resent']:.0f} alerts re-sent"
    )
    print(f"  peak RSS of a newsbot process: {child_peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()

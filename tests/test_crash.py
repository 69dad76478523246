"""A crash mid-delivery repeats at most the send in flight: SIGKILL, rerun, count."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fakebotapi import FakeBotApi, Fault
from feedserver import FeedServer, Item, rss

TOKEN = "123456789:AAFakeTokenForTestsOnly_abcdefghijkl"
CHAT = 4242  # a private chat: 1 message/s, so one send is in flight at a time
REPO = Path(__file__).resolve().parents[1]
TOPICS = """\
topics:
  - id: gba-fintech
    title: GBA fintech
    match:
      all:
        - any: [Hong Kong]
        - any: [stablecoin]
"""


def alerts(n: int) -> bytes:
    now = datetime.now(UTC)
    return rss(
        Item(
            title=f"Hong Kong stablecoin licence number {i} granted to issuer {i * 7}",
            link=f"https://news.example/{i}",
            guid=f"g{i}",
            published=now - timedelta(minutes=i),
        )
        for i in range(n)
    )


def run(config: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "NEWSBOT_"))}
    env["TELEGRAM_BOT_TOKEN"] = TOKEN
    return subprocess.Popen(
        [sys.executable, "-m", "bot", "--config", str(config), "run", "--once"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: its parser workers are found by it
    )


def alive_in_group(group: int) -> list[int]:
    """Processes of the process group ``group`` that still run (zombies do not count)."""
    alive = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == group:
            alive.append(int(stat.parent.name))
    return alive


def test_sigkill_mid_delivery_then_rerun_delivers_everything(tmp_path: Path) -> None:
    n = 8
    with FeedServer() as feeds, FakeBotApi(TOKEN) as api:
        rules = tmp_path / "rules"
        rules.mkdir()
        (rules / "topics.yaml").write_text(TOPICS, encoding="utf-8")
        url = feeds.add("/a.xml", alerts(n))
        (rules / "feeds.yaml").write_text(f"feeds:\n  - url: {url}\n    name: A\n", "utf-8")
        config = tmp_path / "newsbot.toml"
        config.write_text(
            f'[telegram]\napi_url = "{api.api_url}"\n'
            f'[[telegram.channels]]\nchat_id = {CHAT}\ntopics = ["gba-fintech"]\n'
            f'[storage]\nurl = "sqlite:///{tmp_path}/db.sqlite"\n[rules]\ndir = "{rules}"\n',
            encoding="utf-8",
        )
        api.inject("sendMessage", *[Fault.slow(0.4)] * n)
        first = run(config)
        try:
            deadline = time.monotonic() + 60
            while len(api.sent) < 3 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert len(api.sent) >= 3, "the first run never got going"
            first.send_signal(signal.SIGKILL)  # the service only: its workers are orphaned
            first.wait(30)
            deadline = time.monotonic() + 15
            while alive_in_group(first.pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert alive_in_group(first.pid) == [], "orphaned parser workers exit by themselves"
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(first.pid, signal.SIGKILL)
            first.wait(30)
        killed_at = len(api.sent)
        assert killed_at < n, "the kill came too late to test anything"
        second = run(config)
        assert second.wait(120) == 0
    titles = Counter(s.visible.splitlines()[0] for s in api.sent)
    assert len(titles) == n, "every alert arrived"
    repeats = sum(count - 1 for count in titles.values())
    assert repeats <= 1, f"only the send in flight may repeat, got {repeats} repeats"

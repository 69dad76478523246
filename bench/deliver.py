"""Delivery throughput under Telegram's limits: 1,000 private chats and one busy channel.

Queues one alert for each of ``--chats`` private chats and ``--channel`` alerts for one
channel in a fresh SQLite outbox, then drains it with the real ``Deliverer`` and the real
python-telegram-bot against the fake Bot API with Telegram's flood limits enforced (30/s
overall, 1/s per private chat, 20/min per channel; a request over a limit is answered 429
and counted as a violation). Prints the wall time until every private chat has its alert,
how far the channel got in ``--seconds``, limit violations, duplicates and losses.

Goals (issue 5): 1,000 private chats in <= 40 s (33.3 s is Telegram's floor), zero
violations, zero losses. The channel can only get 20 alerts a minute: the rest stay pending,
paced, for later (not a loss).

    python bench/deliver.py [--chats 1000] [--channel 200] [--seconds 65]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from fakebotapi import FakeBotApi  # noqa: E402

from bot.delivery import Deliverer  # noqa: E402
from bot.model import Candidate, Entry, Feed, Hit  # noqa: E402
from bot.store import ChannelConfig, Store  # noqa: E402
from bot.telegram.transport import TelegramTransport, build_application  # noqa: E402

TOKEN = "123456789:AAFakeTokenForBenchmarksOnly_abcdefgh"
CHANNEL = -1001234567890
FEED = Feed(url="http://127.0.0.1/bench.xml", name="Bench Wire")


def utcnow() -> datetime:
    return datetime.now(UTC)


def candidate(n: int, topic: str) -> Candidate:
    title = f"Bench story {n}: Shenzhen fintech pilot widens"
    entry = Entry(id=f"s{n}", link=f"https://bench.example/{n}", title=title, summary=title)
    return Candidate(
        entry=entry,
        key=f"s{n}",
        canonical_url=entry.link,
        title_key=f"benchstory{n}",
        alert=True,
        hits=(Hit(topic, ("fintech",)),),
    )


async def queue(store: Store, chats: int, channel: int) -> None:
    await store.feeds.sync([FEED])
    await store.chats.sync_channels([ChannelConfig(CHANNEL, ("channel",))])
    for chat in range(1, chats + 1):
        await store.chats.subscribe(chat, ["private"])
    cands = [candidate(0, "private")] + [candidate(n, "channel") for n in range(1, channel + 1)]
    now = utcnow()
    await store.stories.save_cycle(
        FEED.url,
        cands,
        now=now,
        next_fetch=now,
        etag=None,
        last_modified=None,
        content_hash=None,
    )


async def bench(chats: int, channel: int, seconds: float) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        store = await Store.open(f"sqlite:///{tmp}/bench.db")
        try:
            await queue(store, chats, channel)
            async with FakeBotApi(TOKEN, limits=True) as api:
                bot = build_application(TOKEN, api.api_url).bot
                async with bot:
                    return await drain(store, api, TelegramTransport(bot), chats, seconds)
        finally:
            await store.close()


async def drain(
    store: Store, api: FakeBotApi, transport: TelegramTransport, chats: int, seconds: float
) -> int:
    deliverer = Deliverer(store, transport, clock=utcnow, tz=UTC)
    stop = asyncio.Event()
    start = time.monotonic()
    task = asyncio.create_task(deliverer.drain(stop=stop, wait_until=utcnow() + timedelta(hours=1)))
    private_done = None
    while time.monotonic() - start < seconds and not task.done():
        if private_done is None and sum(1 for s in api.sent if s.chat_id != CHANNEL) >= chats:
            private_done = time.monotonic() - start
        await asyncio.sleep(0.05)
    stop.set()
    await task
    elapsed = time.monotonic() - start
    return report(api, await store.outbox.counts(), chats, private_done, elapsed)


def report(
    api: FakeBotApi,
    counts: dict[str, int],
    chats: int,
    private_done: float | None,
    elapsed: float,
) -> int:
    private = [s for s in api.sent if s.chat_id != CHANNEL]
    to_channel = [s for s in api.sent if s.chat_id == CHANNEL]
    copies = Counter((s.chat_id, s.visible.splitlines()[0]) for s in api.sent)
    duplicates = sum(n - 1 for n in copies.values())
    lost = chats - len({s.chat_id for s in private}) + counts.get("dead", 0)
    done = f"{private_done:.1f} s" if private_done is not None else "NOT DONE"
    print(f"private chats: {len({s.chat_id for s in private})}/{chats} in {done} (goal <= 40 s)")
    print(
        f"channel: {len(to_channel)} sent in {elapsed:.0f} s "
        f"(Telegram allows 20/min); outbox now {dict(sorted(counts.items()))}"
    )
    print(f"rate: {len(api.sent) / max(private_done or elapsed, 1e-9):.1f} msg/s overall")
    scopes = Counter(v.scope for v in api.violations)
    print(f"limit violations (429 answered): {len(api.violations)} {dict(scopes)}")
    print(f"duplicates: {duplicates}; losses: {lost}")
    ok = private_done is not None and private_done <= 40 and not api.violations and not lost
    return 0 if ok and not duplicates else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chats", type=int, default=1000)
    parser.add_argument("--channel", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=65.0, help="run this long at most")
    args = parser.parse_args()
    return asyncio.run(bench(args.chats, args.channel, args.seconds))


if __name__ == "__main__":
    sys.exit(main())

"""``rules test --since``: the current rules replayed over a real SQLite store."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.model import Candidate, Entry, Feed, Hit
from bot.replay import ProgressLine, format_replay, replay
from bot.rulebook import Rulebook, build_rulebook
from bot.store import Store

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
FEED = Feed("https://a.example/rss", "A News", ("hk",))
OTHER = Feed("https://b.example/rss", "B News")


def rules(text: str) -> Rulebook:
    book, problems = build_rulebook({"t.yaml": "topics:\n" + text}, (FEED, OTHER))
    assert book is not None, problems
    return book


def candidate(n: int, title: str, hits: tuple[Hit, ...] = (), *, key: str = "") -> Candidate:
    entry = Entry(f"id-{n}", f"https://news.example/{n}", title, summary=f"summary {n}")
    return Candidate(entry, f"id-{n}", f"https://news.example/{n}", key or f"k{n}", True, hits)


async def save(store: Store, feed: Feed, when: datetime, *cands: Candidate) -> None:
    await store.stories.save_cycle(
        feed.url,
        cands,
        now=when,
        next_fetch=when,
        etag=None,
        last_modified=None,
        content_hash=None,
    )


@pytest.fixture
async def store(tmp_path: Path) -> Store:
    store = await Store.open(f"sqlite:///{tmp_path}/replay.db")
    await store.feeds.sync((FEED, OTHER))
    old = Hit("t", ("fintech",))
    await save(store, FEED, NOW - timedelta(days=30), candidate(1, "Old fintech", (old,)))
    await save(
        store,
        FEED,
        NOW - timedelta(days=2),
        candidate(2, "Hong Kong fintech week", (old,)),
        candidate(3, "Shenzhen stablecoin pilot"),
        candidate(4, "Football results"),
    )
    # The same story from a second feed (same title key): one story, two sources.
    await save(store, OTHER, NOW - timedelta(days=1), candidate(5, "Shenzhen stablecoin", key="k3"))
    return store


async def test_replay_reports_what_would_alert_now_and_what_no_longer_would(
    store: Store,
) -> None:
    seen: list[tuple[int, int]] = []
    try:
        report = await replay(
            store,
            rules(
                "  - id: t\n    match: [stablecoin]\n  - id: hk\n    match: football\n"
                "    feeds: [tag:hk]\n"
            ),
            timedelta(days=7),
            NOW,
            lambda done, total: seen.append((done, total)),
            batch=2,
        )
    finally:
        await store.close()
    assert (report.entries, report.stories) == (4, 3)
    assert (report.matched_before, report.matched_now) == (1, 2)
    assert [(c.title, c.topics, c.keywords, c.feeds) for c in report.added] == [
        ("Shenzhen stablecoin pilot", ("t",), ("stablecoin",), ("A News", "B News")),
        ("Football results", ("hk",), ("football",), ("A News",)),
    ]
    assert [(c.title, c.topics) for c in report.removed] == [("Hong Kong fintech week", ("t",))]
    assert seen == [(0, 4), (2, 4), (4, 4)]
    text = format_replay(report)
    assert text.splitlines()[0] == (
        "replayed 4 entries (3 stories) first seen since 2025-05-25 12:00 UTC: "
        "1 stories matched then, 2 match now"
    )
    assert "would alert now, did not then (2):" in text
    assert "  2025-05-30 12:00 #t Shenzhen stablecoin pilot (A News, B News) [stablecoin]" in text
    assert "matched then, would not now (1):\n  2025-05-30 12:00 #t Hong Kong fintech week" in text


async def test_feed_scope_uses_the_feed_that_carried_the_entry(store: Store) -> None:
    try:
        report = await replay(
            store,
            rules("  - id: t\n    match: stablecoin\n    feeds: [B News]\n"),
            NOW - timedelta(days=7),
            NOW,
        )
    finally:
        await store.close()
    assert [(c.title, c.feeds) for c in report.added] == [
        ("Shenzhen stablecoin pilot", ("A News", "B News"))
    ]


async def test_an_empty_window(store: Store) -> None:
    try:
        report = await replay(store, rules("  - id: t\n    match: x\n"), timedelta(0), NOW)
    finally:
        await store.close()
    assert (report.entries, report.added, report.removed) == (0, (), ())
    assert format_replay(report).endswith("matched then, would not now (0):")


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_line_redraws_on_a_terminal_only() -> None:
    terminal = Terminal()
    line = ProgressLine(terminal)
    for done in (0, 1, 2, 500, 1000):
        line(done, 1000)
    line.close()
    assert terminal.getvalue() == (
        "\rreplaying [                    ] 0/1,000 entries (0%)"
        "\rreplaying [##########          ] 500/1,000 entries (50%)"
        "\rreplaying [####################] 1,000/1,000 entries (100%)\n"
    )
    pipe = io.StringIO()
    quiet = ProgressLine(pipe)
    quiet(5, 10)
    quiet.close()
    assert pipe.getvalue() == ""

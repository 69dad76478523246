"""``newsbot rules test --since 7d``: the current rules replayed over stored entries.

For each story first seen in the window, the topics the current matcher gives its entries'
stored title and summary are compared with the story's old hits (the ``hits`` rows written
when it was fetched):

- **would alert now**: topics the story matches now and did not then;
- **would no longer alert**: topics it matched then and does not now (a removed or renamed
  topic shows here too).

Caveat: the store keeps an entry's title and summary, not its full content or tags, so a
story that matched on its content alone shows as "no longer" even with unchanged rules.

``replay`` reads in batches and reports progress after each; ``ProgressLine`` draws that
progress as one self-overwriting line on a terminal (stderr), and stays silent elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TextIO

from bot.matcher import Matcher
from bot.model import Entry, Feed
from bot.rulebook import Rulebook
from bot.store import Store
from bot.store.replay import ReplayQueries, StoredEntry

Progress = Callable[[int, int], None]
"""Called with (entries done, entries in total) after each batch."""


@dataclass(frozen=True, slots=True)
class Change:
    """One story whose topics differ between then and now."""

    story_id: int
    title: str
    link: str
    feeds: tuple[str, ...]
    first_seen: datetime
    topics: tuple[str, ...]
    keywords: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ReplayReport:
    since: datetime
    now: datetime
    entries: int
    stories: int
    matched_before: int
    matched_now: int
    added: tuple[Change, ...] = ()
    removed: tuple[Change, ...] = ()


@dataclass
class _Story:
    """What the replay learned about one story so far."""

    first: StoredEntry
    feeds: list[str] = field(default_factory=list)
    now: dict[str, list[str]] = field(default_factory=dict)


async def replay(
    source: Store | ReplayQueries,
    rules: Rulebook | Matcher,
    since: timedelta | datetime,
    now: datetime,
    progress: Progress | None = None,
    *,
    batch: int = 500,
) -> ReplayReport:
    """Replay ``rules`` over entries first seen since ``since`` (a time, or a span before
    ``now``); read-only."""
    queries = ReplayQueries(source.engine) if isinstance(source, Store) else source
    matcher = rules if isinstance(rules, Matcher) else Matcher.compile(rules)
    start = now - since if isinstance(since, timedelta) else since
    total = await queries.count(start)
    feeds = {f.url: f for f in matcher.rulebook.feeds}
    stories: dict[int, _Story] = {}
    done = 0
    if progress is not None:
        progress(0, total)
    async for entries in queries.batches(start, size=batch):
        for stored in entries:
            _match(matcher, stored, feeds, stories)
        done += len(entries)
        if progress is not None:
            progress(done, max(done, total))
    return _report(stories.values(), start, now, done)


def _match(
    matcher: Matcher, stored: StoredEntry, feeds: dict[str, Feed], stories: dict[int, _Story]
) -> None:
    # The feed as feeds.yaml has it now (its tags scope topics), else as the store knew it.
    feed = feeds.get(stored.feed_url) or Feed(stored.feed_url, stored.feed_name, stored.feed_tags)
    entry = Entry(id=None, link=stored.link, title=stored.title, summary=stored.summary)
    story = stories.setdefault(stored.story_id, _Story(stored))
    if feed.name not in story.feeds:
        story.feeds.append(feed.name)
    for hit in matcher.match(entry, feed):
        words = story.now.setdefault(hit.topic_id, [])
        words.extend(k for k in hit.keywords if k not in words)


def _report(
    stories: Iterable[_Story], since: datetime, now: datetime, entries: int
) -> ReplayReport:
    added, removed = [], []
    count = before = after = 0
    for story in stories:
        count += 1
        old = set(story.first.old_topics)
        before += bool(old)
        after += bool(story.now)
        new_topics = tuple(t for t in story.now if t not in old)
        gone = tuple(sorted(old - set(story.now)))
        if new_topics:
            keywords = tuple(dict.fromkeys(k for t in new_topics for k in story.now[t]))
            added.append(_change(story, new_topics, keywords))
        if gone:
            removed.append(_change(story, gone, ()))
    return ReplayReport(since, now, entries, count, before, after, tuple(added), tuple(removed))


def _change(story: _Story, topics: tuple[str, ...], keywords: tuple[str, ...]) -> Change:
    first = story.first
    return Change(
        first.story_id,
        first.title,
        first.link,
        tuple(story.feeds),
        first.first_seen,
        topics,
        keywords,
    )


# -- text -----------------------------------------------------------------------------------


def format_replay(report: ReplayReport, *, limit: int = 50) -> str:
    """A summary line, then the stories that would alert now and those that no longer would
    (at most ``limit`` of each, newest first)."""
    lines = [
        f"replayed {report.entries} entries ({report.stories} stories) first seen since "
        f"{report.since:%Y-%m-%d %H:%M} UTC: {report.matched_before} stories matched then, "
        f"{report.matched_now} match now",
    ]
    for title, changes in (
        ("would alert now, did not then", report.added),
        ("matched then, would not now", report.removed),
    ):
        lines.append("")
        lines.append(f"{title} ({len(changes)}):")
        ordered = sorted(changes, key=lambda c: c.first_seen, reverse=True)
        lines.extend(_change_line(c) for c in ordered[:limit])
        if len(changes) > limit:
            lines.append(f"  ... and {len(changes) - limit} more")
    return "\n".join(lines)


def _change_line(change: Change) -> str:
    why = f" [{', '.join(change.keywords)}]" if change.keywords else ""
    return (
        f"  {change.first_seen:%Y-%m-%d %H:%M} {' '.join('#' + t for t in change.topics)} "
        f"{change.title} ({', '.join(change.feeds)}){why}"
    )


class ProgressLine:
    """A ``Progress`` that draws ``replaying 1,200/8,000 entries (15%)`` on one line.

    Only on a terminal (a pipe or a log file gets nothing), and only when the whole
    percentage changes, so a large replay writes at most ~100 updates. ``close`` ends the line.
    """

    def __init__(self, stream: TextIO, *, label: str = "replaying") -> None:
        self._stream = stream
        self._label = label
        self._enabled = stream.isatty()
        self._shown = -1

    def __call__(self, done: int, total: int) -> None:
        percent = 100 * done // total if total else 100
        if not self._enabled or percent == self._shown:
            return
        self._shown = percent
        width = 20
        bar = "#" * (percent * width // 100)
        self._stream.write(
            f"\r{self._label} [{bar:<{width}}] {done:,}/{total:,} entries ({percent}%)"
        )
        self._stream.flush()

    def close(self) -> None:
        if self._enabled and self._shown >= 0:
            self._stream.write("\n")
            self._stream.flush()

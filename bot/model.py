"""Frozen value types passed between the stages, named by role.

Stages return these, never a library's types: ``parse`` returns ``Entry`` values, not
feedparser dicts; ``store`` returns ``Delivery`` values, not rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal


@dataclass(frozen=True, slots=True)
class Feed:
    """One feed of ``rules/feeds.yaml``. ``interval`` is in seconds; None means the default."""

    url: str
    name: str
    tags: tuple[str, ...] = ()
    interval: float | None = None


@dataclass(frozen=True, slots=True)
class FeedState:
    """What the store remembers about a feed between fetches."""

    etag: str | None = None
    last_modified: str | None = None
    content_hash: str | None = None
    first_fetch_done: bool = False
    consecutive_errors: int = 0


@dataclass(frozen=True, slots=True)
class FetchResult:
    """One HTTP exchange. ``content`` is empty on 304; ``url`` is the final URL."""

    url: str
    status: int
    content: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    etag: str | None = None
    last_modified: str | None = None
    permanent_redirect: str | None = None

    @property
    def not_modified(self) -> bool:
        return self.status == 304


@dataclass(frozen=True, slots=True)
class Entry:
    """One feed item as text. ``published`` is timezone-aware UTC, or None when undated."""

    id: str | None
    link: str
    title: str
    summary: str = ""
    content: str = ""
    published: datetime | None = None
    tags: tuple[str, ...] = ()


# Rule trees. A topic's ``match`` is one Node; rulebook builds them, matcher compiles them.


@dataclass(frozen=True, slots=True)
class Keyword:
    """A literal keyword as the operator wrote it, or a ``re:`` pattern when ``regex``."""

    text: str
    line: int = 0
    regex: bool = False


@dataclass(frozen=True, slots=True)
class AnyOf:
    children: tuple[Node, ...]
    line: int = 0


@dataclass(frozen=True, slots=True)
class AllOf:
    children: tuple[Node, ...]
    line: int = 0


@dataclass(frozen=True, slots=True)
class NotOf:
    child: Node
    line: int = 0


Node = Keyword | AnyOf | AllOf | NotOf

FIELDS = ("title", "summary", "content", "tags", "link")
DEFAULT_FIELDS = ("title", "summary", "content", "tags")


@dataclass(frozen=True, slots=True)
class Topic:
    """A validated topic. ``feeds`` holds ``tag:NAME``, feed names or urls; empty = all feeds.

    ``title`` and ``description`` are the default texts; ``titles`` and ``descriptions``
    hold the translations a rule file gives, as (language, text) pairs.
    """

    id: str
    title: str
    match: Node
    description: str = ""
    default: bool = False
    fields: tuple[str, ...] = DEFAULT_FIELDS
    feeds: tuple[str, ...] = ()
    file: str = ""
    line: int = 0
    titles: tuple[tuple[str, str], ...] = ()
    descriptions: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Hit:
    """An entry matched a topic; ``keywords`` are the matched keywords as written in the rule."""

    topic_id: str
    keywords: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Candidate:
    """A new entry on its way into the store, with its keys and the decisions taken on it.

    ``alert`` is False for entries recorded as seen only (backfill, too old).
    """

    entry: Entry
    key: str
    canonical_url: str
    title_key: str
    alert: bool
    hits: tuple[Hit, ...] = ()


@dataclass(frozen=True, slots=True)
class Story:
    """What an alert shows: one story, every source that carried it, and why it matched."""

    id: int
    title: str
    link: str
    summary: str = ""
    published: datetime | None = None
    sources: tuple[str, ...] = ()
    topics: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Delivery:
    """A claimed outbox row: send ``story`` to ``chat_id``. ``language`` and ``timezone``
    are the chat's choices (None: not chosen), for the alert's fixed words and times."""

    id: int
    chat_id: int
    story: Story
    attempts: int = 0
    thread_id: int | None = None
    created: datetime | None = None
    language: str | None = None
    timezone: str | None = None


FeedStatus = Literal["ok", "not_modified", "unchanged", "error"]


@dataclass(frozen=True, slots=True)
class FeedReport:
    """The outcome of one feed cycle. A failing feed is a report, not an exception."""

    url: str
    status: FeedStatus
    entries: int = 0
    new_entries: int = 0
    hits: int = 0
    queued: int = 0
    error: str | None = None
    warning: str | None = None
    next_fetch: datetime | None = None


@dataclass(frozen=True, slots=True)
class FeedHealth:
    """A feed's health as ``newsbot feeds`` and ``/feeds`` show it."""

    url: str
    name: str
    last_fetch: datetime | None
    last_success: datetime | None
    status: str
    consecutive_errors: int
    last_error: str | None
    entries: int
    hits: int
    disabled: str | None = None


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    """A parsed document (``parse.parse_feed``): its title, its entries in document order,
    and any warning. ``ttl``: the RSS ``<ttl>`` (minutes in the document) in seconds, or None.
    """

    title: str
    entries: tuple[Entry, ...]
    warning: str | None = None
    ttl: float | None = None

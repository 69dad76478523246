"""The database schema (SQLAlchemy Core). One table per concept of DESIGN's data model.

Times are stored as timezone-aware UTC. ``SCHEMA_VERSION`` is bumped with each change, and
``store.engine.migrate`` brings an older database forward.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

SCHEMA_VERSION = 1

metadata = MetaData()


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on SQLite as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; pass aware UTC times")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _when(name: str, **kw: Any) -> Column[datetime]:
    return Column(name, UTCDateTime(), **kw)


meta = Table(
    "meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

feeds = Table(
    "feeds",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("url", Text, nullable=False, unique=True),
    Column("name", Text, nullable=False),
    Column("tags", JSON, nullable=False, default=list),
    Column("etag", Text),
    Column("last_modified", Text),
    Column("content_hash", String(64)),
    Column("first_fetch_done", Boolean, nullable=False, default=False),
    _when("next_fetch"),
    _when("last_fetch"),
    _when("last_success"),
    Column("status", String(16), nullable=False, default="new"),
    Column("consecutive_errors", Integer, nullable=False, default=0),
    Column("last_error", Text),
    Column("redirect_url", Text),
    Column("disabled_reason", Text),
    Column("active", Boolean, nullable=False, default=True),
    Column("ttl", Integer),  # the feed's last <ttl>, in seconds: still honoured on a 304
    Column("last_warning", Text),  # the last parse warning (bozo with entries, charset)
    _when("disabled_at"),
)

stories = Table(
    "stories",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("canonical_url", Text, nullable=False),
    Column("title_key", Text, nullable=False),
    # Databases made before 2026-11-29 also have a "fingerprint" column (a SimHash nothing
    # read any more); it is nullable and no longer written.
    Column("title", Text, nullable=False),
    Column("link", Text, nullable=False),
    Column("summary", Text, nullable=False, default=""),
    _when("published"),
    _when("first_seen", nullable=False),
    Index("ix_stories_canonical_url", "canonical_url"),
    Index("ix_stories_first_seen", "first_seen"),
    Index("ix_stories_title_key", "title_key", "first_seen"),
)

entries = Table(
    "entries",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("feed_id", Integer, ForeignKey("feeds.id"), nullable=False),
    Column("entry_key", Text, nullable=False),
    Column("story_id", Integer, ForeignKey("stories.id"), nullable=False),
    Column("canonical_url", Text, nullable=False),
    Column("title", Text, nullable=False),
    Column("link", Text, nullable=False),
    Column("summary", Text, nullable=False, default=""),
    _when("published"),
    _when("first_seen", nullable=False),
    Column("alerted", Boolean, nullable=False, default=False),
    Column("matched", Boolean, nullable=False, default=False),
    UniqueConstraint("feed_id", "entry_key", name="uq_entries_feed_key"),
    Index("ix_entries_story", "story_id"),
    Index("ix_entries_canonical_url", "canonical_url"),
)

hits = Table(
    "hits",
    metadata,
    Column("story_id", Integer, ForeignKey("stories.id"), primary_key=True),
    Column("topic_id", String(64), primary_key=True),
    Column("keywords", JSON, nullable=False, default=list),
    _when("created", nullable=False),
)

# Chat ids are not foreign keys elsewhere: a group migration rewrites them in every table.
chats = Table(
    "chats",
    metadata,
    Column("chat_id", BigInteger, primary_key=True, autoincrement=False),
    Column("kind", String(16), nullable=False),
    Column("title", Text),
    Column("language", String(16)),
    Column("timezone", String(64)),
    Column("active", Boolean, nullable=False, default=True),
    Column("inactive_reason", Text),
    Column("from_config", Boolean, nullable=False, default=False),
    Column("thread_id", BigInteger),
    _when("muted_until"),
    Column("digest", String(32)),
    _when("created", nullable=False),
)

subscriptions = Table(
    "subscriptions",
    metadata,
    Column("chat_id", BigInteger, primary_key=True, autoincrement=False),
    Column("topic_id", String(64), primary_key=True),
    _when("created", nullable=False),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("story_id", Integer, ForeignKey("stories.id"), nullable=False),
    Column("chat_id", BigInteger, nullable=False),
    Column("status", String(16), nullable=False, default="pending"),
    Column("attempts", Integer, nullable=False, default=0),
    _when("next_attempt", nullable=False),
    _when("claimed_at"),
    _when("created", nullable=False),
    _when("sent_at"),
    Column("message_id", BigInteger),
    Column("last_error", Text),
    # Who holds the claim ("host:pid"): a crashed sender's rows are released at once.
    Column("claimed_by", String(128)),
    # The source names the sent message shows; a later source joining the story sets
    # ``edit`` to pending and the message is edited to list it (status stays sent).
    Column("sources_sent", JSON),
    Column("edit", String(16)),
    # Sent inside a digest message (mute released, /digest): never edited, the message
    # lists many stories.
    Column("in_digest", Boolean),
    UniqueConstraint("story_id", "chat_id", name="uq_deliveries_story_chat"),
    Index("ix_deliveries_due", "status", "next_attempt"),
    Index("ix_deliveries_edit", "edit", "next_attempt"),
)

# Delivery statuses: pending (due at next_attempt), sending (claimed, in flight),
# sent (Telegram answered with message_id), dead (will not be retried; last_error says why).
PENDING, SENDING, SENT, DEAD = "pending", "sending", "sent", "dead"
# A sent row's ``edit``: None (nothing to do), pending (due at next_attempt), sending (claimed).
EDIT_PENDING, EDIT_SENDING = "pending", "sending"

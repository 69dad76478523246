"""The outbox as operators read it: ``newsbot outbox`` and the admin ``/status`` line.

Pure: the store gathers an ``OutboxReport`` (``store.outbox.report(now)``); this module only
formats it. Plain text, no markup: the CLI prints it and a chat command sends it escaped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

REASON_CHARS = 160
TITLE_CHARS = 60


@dataclass(frozen=True, slots=True)
class ChatQueue:
    """One chat's queue: rows waiting (pending or in flight) and rows given up."""

    chat_id: int
    pending: int
    dead: int
    oldest_pending: datetime | None = None


@dataclass(frozen=True, slots=True)
class DeadRow:
    """A delivery that will not be retried, and why."""

    chat_id: int
    title: str
    reason: str
    attempts: int
    created: datetime | None = None


@dataclass(frozen=True, slots=True)
class OutboxReport:
    now: datetime
    counts: Mapping[str, int] = field(default_factory=dict)
    edits_pending: int = 0
    chats: tuple[ChatQueue, ...] = ()
    dead: tuple[DeadRow, ...] = ()

    @property
    def waiting(self) -> int:
        return self.counts.get("pending", 0) + self.counts.get("sending", 0)


def outbox_summary(report: OutboxReport) -> str:
    """One line for ``/status``: ``outbox: 3 pending (oldest 2m), 12 sent, 1 dead, 0 edits``."""
    oldest = min((q.oldest_pending for q in report.chats if q.oldest_pending), default=None)
    age = f" (oldest {_age(oldest, report.now)})" if oldest and report.waiting else ""
    return (
        f"outbox: {report.waiting} pending{age}, {report.counts.get('sent', 0)} sent, "
        f"{report.counts.get('dead', 0)} dead, {report.edits_pending} edits pending"
    )


def outbox_text(report: OutboxReport, *, max_chats: int = 50) -> str:
    """The full view for ``newsbot outbox``: the summary, a line per chat with work or
    dead rows, and the latest dead rows with their reasons."""
    lines = [outbox_summary(report)]
    if report.chats:
        lines += ["", "per chat (pending, dead, oldest pending):"]
        for q in report.chats[:max_chats]:
            oldest = _age(q.oldest_pending, report.now) if q.oldest_pending else "-"
            lines.append(f"  {q.chat_id:>16}  {q.pending:>6}  {q.dead:>6}  {oldest}")
        if len(report.chats) > max_chats:
            lines.append(f"  ... and {len(report.chats) - max_chats} more chats")
    if report.dead:
        lines += ["", "dead (latest first):"]
        for d in report.dead:
            lines.append(
                f"  chat {d.chat_id}: {_clip(d.title, TITLE_CHARS)} -- "
                f"{_clip(d.reason, REASON_CHARS)} ({d.attempts} attempts)"
            )
    return "\n".join(lines)


def _age(when: datetime | None, now: datetime) -> str:
    if when is None:
        return "-"
    seconds = max(0, int((now - when).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"

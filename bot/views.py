"""Operator views as plain text: the feed health table and the status summary.

Used by ``newsbot feeds`` and the admin chat commands ``/feeds`` and ``/status``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from bot.model import FeedHealth


def ago(when: datetime | None, now: datetime) -> str:
    """``3m ago``, ``2h ago``, ``never``."""
    if when is None:
        return "never"
    seconds = max(0, int((now - when).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


def feeds_table(health: Sequence[FeedHealth], *, now: datetime) -> str:
    """One line per feed: status, last fetch, last success, errors, entries, hits; then a
    ``!`` line per failing or disabled feed (why) and a ``>`` line per moved feed (where to).
    """
    if not health:
        return "no feeds configured"
    header = ("feed", "status", "fetched", "ok", "errors", "entries", "hits")
    rows = [
        (
            h.name[:40],
            "disabled" if h.disabled else h.status,
            ago(h.last_fetch, now),
            ago(h.last_success, now),
            str(h.consecutive_errors),
            str(h.entries),
            str(h.hits),
        )
        for h in health
    ]
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in (header, *rows)
    ]
    for h in health:
        lines.extend(_notes(h))
    return "\n".join(lines)


def _notes(h: FeedHealth) -> list[str]:
    """The lines under the table about one feed: its error, why disabled, where it moved."""
    notes = []
    if h.disabled:
        reason = h.disabled.removeprefix("disabled: ")
        notes.append(f"! {h.name}: disabled: {reason}")
    elif h.last_error and h.status == "error":
        notes.append(f"! {h.name}: {h.last_error}")
    warning = getattr(h, "warning", None)  # StoredHealth; FeedHealth once model has it
    if warning and h.status != "error" and not h.disabled:
        notes.append(f"~ {h.name}: warning: {warning}")
    redirect = getattr(h, "redirect_url", None)
    if redirect:
        notes.append(f"> {h.name}: moved permanently to {redirect}")
    return notes


def status_text(
    *,
    now: datetime,
    started: datetime,
    health: Sequence[FeedHealth],
    outbox: Mapping[str, int],
    rules_loaded: datetime,
    rules_error: str | None,
) -> str:
    failing = sum(1 for h in health if h.status == "error")
    uptime = ago(started, now).removesuffix(" ago")
    lines = [
        f"up {uptime}",
        f"feeds: {len(health) - failing} ok, {failing} failing",
        "outbox: "
        + ", ".join(f"{outbox.get(s, 0)} {s}" for s in ("pending", "sending", "sent", "dead")),
        f"rules loaded {ago(rules_loaded, now)}",
    ]
    if rules_error:
        lines.append(f"last reload failed:\n{rules_error}")
    return "\n".join(lines)

"""A story as a Telegram alert. Pure: values in, a string out; no I/O, no clock, no telegram.

The alert, in Telegram's HTML parse mode::

    <b><a href="URL">Title</a></b>
    Source A, Source B · 2026-11-28 18:15 HKT · also: Source C
    A short snippet of the summary with <b>matched</b> keywords…
    #gba_fintech #hk_regulators

Why it looks like this and what it guarantees:

- Every piece of text goes through ``html.escape``; the href is escaped with ``quote=True``.
  A title with ``<``, ``&``, quotes or broken markup is shown as written and can never make
  Telegram answer 400 "can't parse entities". Only ``http``/``https`` links become anchors:
  a ``javascript:`` or relative link is dropped, the title is still shown.
- Telegram accepts at most 4096 characters after entity parsing, counted in UTF-16 code units
  (an emoji counts two). Both the visible text and the raw HTML are kept within
  ``max_length`` in those units: the snippet is shortened first, then the title; a link too
  long to fit at all is dropped.
- Telegram rejects a message with more than 100 entities. Only the first ``MAX_BOLD`` keyword
  matches are bold and at most ``MAX_TAGS`` hashtags are shown, so an alert has at most ~20.
- Keywords are found as the matcher finds them: case-insensitively, with full/half width and
  Traditional/Simplified Chinese treated as one (``bot.text.fold``, applied one character
  at a time on both sides so positions map back to the original text); a space or hyphen
  inside a keyword also matches a space, a hyphen or nothing (``e-CNY`` bolds ``eCNY``).
  A keyword edge that is a letter or digit must not touch another (``GBA`` is not bold in
  ``GBAS``); ``re:`` keywords run through RE2 (linear time) on the folded text.
- ``also``: sources that carried the story after the alert went out. The alert is edited
  to list them after the time ("also: …"); the rest of the message stays as it was.
- Topic ids become hashtags; a hashtag cannot contain ``-``, so ``gba-fintech`` shows as
  ``#gba_fintech``.
- The fixed words ("also:", "+2 more", "(untitled)") are in the chat's language
  (``bot.telegram.i18n``); times are in the chat's time zone.

``render_digest`` lists held alerts (a mute's end, a digest period) one line each, split
over as few messages as Telegram's limits allow; the same escaping and link rules apply.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from urllib.parse import urlsplit

import re2

from bot.model import Story
from bot.telegram.i18n import EN, t, when
from bot.text import fold, fold_pattern

SNIPPET_CHARS = 300
MAX_BOLD = 5
MAX_TAGS = 10
MAX_SOURCES = 5
SOURCE_CHARS = 80
TAG_CHARS = 60
ELLIPSIS = "…"
MIN_TITLE = 40  # chars of title worth dropping the sources line and hashtags for
# Digests: one line per story; each line carries one entity (its link), so a message stays
# far below Telegram's 100 entities.
DIGEST_LINES = 40
DIGEST_TITLE = 150
DIGEST_SOURCES = 2
DIGEST_LINK = 1000  # a longer link is left out: the title is still listed

_SPACES = re.compile(r"\s+")
# C0/C1 controls other than whitespace, and lone surrogates: Telegram rejects or mangles them.
_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
_GAPS = re.compile(r"[ -]+")
_DASHES = frozenset("\u2010\u2011\u2012\u2013\u2014\u2212_-")
_NOT_TAG_CHAR = re.compile(r"\W")


@dataclass(frozen=True, slots=True)
class _Parts:
    """The pieces of an alert, cleaned but not yet shortened."""

    title: str
    link: str | None
    meta: str
    summary: str
    spans: tuple[tuple[int, int], ...]
    tags: str


def render_alert(
    story: Story,
    *,
    tz: tzinfo = UTC,
    lang: str = EN,
    max_length: int = 4096,
    also: Sequence[str] = (),
) -> str:
    """The alert for ``story`` as Telegram HTML, at most ``max_length`` UTF-16 units, its
    fixed words in ``lang``; ``also`` lists sources that joined after it was sent."""
    parts = _parts(story, tz, lang, also)
    layout = _fit(parts, max_length)
    if layout is None:  # not even a one-word title in bold fits: plain escaped text
        limit = _largest(0, len(parts.title), lambda n: _plain_fits(parts, n, max_length))
        return _escape(_shorten(parts.title, _cut_point(parts.title, limit)))
    return _compose(parts, layout)[0]


def render_digest(
    stories: Sequence[Story],
    *,
    after_mute: bool = False,
    tz: tzinfo = UTC,
    lang: str = EN,
    max_length: int = 4096,
) -> list[tuple[str, int]]:
    """Held alerts as digest messages: ``[(HTML, how many of stories it lists)]``, in order.

    One line per story, ``• Title — Source · 28 Nov 18:15``, the title linked. The stories
    fill as few messages as fit in ``max_length`` UTF-16 units and ``DIGEST_LINES`` lines;
    every message's heading counts them all and, when there are several, numbers its part.
    """
    key = "digest.heading_muted" if after_mute else "digest.heading"
    heading = t(lang, key, count=len(stories))
    widest = heading + t(lang, "digest.page", page=len(stories), pages=len(stories))
    room = max_length - _utf16(widest)
    pages: list[list[str]] = []
    used = 0
    for story in stories:
        line = _digest_line(story, tz, lang)
        size = _utf16(line) + 1  # and its newline
        if not pages or len(pages[-1]) == DIGEST_LINES or used + size > room:
            pages.append([])
            used = 0
        pages[-1].append(line)
        used += size
    if len(pages) == 1:
        return [("\n".join([heading, *pages[0]]), len(pages[0]))]
    return [
        (
            "\n".join([heading + t(lang, "digest.page", page=i, pages=len(pages)), *lines]),
            len(lines),
        )
        for i, lines in enumerate(pages, 1)
    ]


def _digest_line(story: Story, tz: tzinfo, lang: str) -> str:
    """``• Title — Source · 28 Nov 18:15`` as HTML; at most ~``DIGEST_TITLE + 2 × SOURCE_CHARS
    + DIGEST_LINK`` characters, whatever the story holds."""
    title = _title(story, lang)
    title = _escape(_shorten(title, _cut_point(title, DIGEST_TITLE)))
    link = story.link.strip()
    if _is_web_link(link) and len(link) <= DIGEST_LINK:
        title = f'<a href="{html.escape(link, quote=True)}">{title}</a>'
    meta = [_sources(story.sources, lang, limit=DIGEST_SOURCES)]
    if story.published is not None:
        published = story.published
        if published.tzinfo is None:
            published = published.replace(tzinfo=UTC)
        meta.append(when(published.astimezone(tz), lang))
    shown = " · ".join(m for m in meta if m)
    return f"• {title} — {_escape(shown)}" if shown else f"• {title}"


@dataclass(frozen=True, slots=True)
class _Layout:
    """How much of each part to show: chars of title and snippet kept, link and extras."""

    title: int
    snippet: int
    link: bool = True
    extras: bool = True  # the sources/time line and the hashtags


def _fit(parts: _Parts, max_length: int) -> _Layout | None:
    """The fullest layout within ``max_length``: shorten the snippet, then the title."""

    def ok(layout: _Layout) -> bool:
        markup, visible = _compose(parts, layout)
        return _utf16(markup) <= max_length and _utf16(visible) <= max_length

    full = len(parts.title)
    limit = _largest(0, SNIPPET_CHARS, lambda n: ok(_Layout(full, _cut_point(parts.summary, n))))
    layout = _Layout(full, _cut_point(parts.summary, limit))
    if ok(layout):
        return layout
    # Keep a readable title before the sources line and hashtags, and those before the link
    # (a link longer than the whole message cannot be kept at all).
    readable = min(len(parts.title), MIN_TITLE)
    for link, extras, least in ((True, True, readable), (True, False, readable), (False, False, 1)):
        layout = _fit_title(parts, _Layout(0, 0, link, extras), ok)
        if layout.title >= least and ok(layout):
            return layout
    return None


def _fit_title(parts: _Parts, base: _Layout, ok: Callable[[_Layout], bool]) -> _Layout:
    def with_title(limit: int) -> _Layout:
        return _Layout(_cut_point(parts.title, limit), 0, base.link, base.extras)

    return with_title(_largest(0, len(parts.title), lambda n: ok(with_title(n))))


def _plain_fits(parts: _Parts, limit: int, max_length: int) -> bool:
    return _utf16(_escape(_shorten(parts.title, _cut_point(parts.title, limit)))) <= max_length


def _parts(story: Story, tz: tzinfo, lang: str, also: Sequence[str] = ()) -> _Parts:
    summary = _clean(story.summary)
    scope = summary[: SNIPPET_CHARS + 1]
    later = _sources(also, lang)
    meta = [
        _sources(story.sources, lang),
        _when(story.published, tz),
        t(lang, "alert.also", sources=later) if later else "",
    ]
    return _Parts(
        title=_title(story, lang),
        link=story.link.strip() if _is_web_link(story.link) else None,
        meta=" · ".join(x for x in meta if x),
        summary=summary,
        spans=tuple(find_keywords(scope, story.keywords)),
        tags=" ".join(_hashtags(story.topics)),
    )


def _compose(parts: _Parts, layout: _Layout) -> tuple[str, str]:
    """(HTML, visible text) of ``parts`` shown as ``layout`` says."""
    title = _shorten(parts.title, layout.title)
    head = f"<b>{_escape(title)}</b>"
    if layout.link and parts.link:
        head = f'<b><a href="{html.escape(parts.link, quote=True)}">{_escape(title)}</a></b>'
    markup, visible = [head], [title]
    if layout.extras and parts.meta:
        markup.append(_escape(parts.meta))
        visible.append(parts.meta)
    if layout.snippet:
        snippet = _shorten(parts.summary, layout.snippet)
        spans = [s for s in parts.spans if s[1] <= layout.snippet]
        markup.append(_bold(snippet, spans))
        visible.append(snippet)
    if layout.extras and parts.tags:
        markup.append(_escape(parts.tags))
        visible.append(parts.tags)
    return "\n".join(markup), "\n".join(visible)


def find_keywords(text: str, keywords: Sequence[str]) -> list[tuple[int, int]]:
    """Non-overlapping (start, end) spans of ``keywords`` in ``text``, first ``MAX_BOLD``.

    Case, width and Traditional/Simplified differences are ignored; Latin keywords match
    whole words; ``re:PATTERN`` keywords are RE2 patterns over the folded text.
    """
    folded, origin = _fold_map(text)
    found: list[tuple[int, int]] = []
    for keyword in keywords:
        found += _spans(folded, keyword)
    chosen: list[tuple[int, int]] = []
    for start, end in sorted(found, key=lambda s: (s[0], -s[1])):
        if chosen and start < chosen[-1][1]:
            continue
        chosen.append((start, end))
        if len(chosen) == MAX_BOLD:
            break
    return [(origin[s], origin[e - 1] + 1) for s, e in chosen]


def _fold_map(text: str) -> tuple[str, list[int]]:
    """``text`` folded one character at a time, and each folded char's original index.

    Dashes and underscores read as ``-`` and whitespace as a space, as the matcher reads them.
    """
    pieces: list[str] = []
    origin: list[int] = []
    for i, char in enumerate(text):
        piece = _fold_char(char)
        pieces.append(piece)
        origin += [i] * len(piece)
    return "".join(pieces), origin


def _fold_char(char: str) -> str:
    if char in _DASHES:
        return "-"
    return " " if char.isspace() else fold(char)


def _spans(folded: str, keyword: str) -> list[tuple[int, int]]:
    if keyword.startswith("re:"):
        return _regex_spans(folded, fold_pattern(keyword[3:]))
    words = [w for w in _GAPS.split("".join(_fold_char(c) for c in keyword)) if w]
    if not words:
        return []
    # A space or hyphen inside a keyword also matches a space, a hyphen or nothing.
    pattern = re.compile("[ -]?".join(re.escape(w) for w in words))
    return [
        (m.start(), m.end())
        for m in _overlapping(pattern, folded)
        if _whole_word(folded, m.start(), m.end())
    ]


def _overlapping(pattern: re.Pattern[str], text: str) -> Iterator[re.Match[str]]:
    """Matches starting at every position: a match touching a word can hide a good one."""
    pos = 0
    while (m := pattern.search(text, pos)) is not None:
        yield m
        pos = m.start() + 1


def _regex_spans(folded: str, pattern: str) -> list[tuple[int, int]]:
    try:
        compiled = re2.compile("(?i)" + pattern)
        return [(m.start(), m.end()) for m in compiled.finditer(folded) if m.end() > m.start()]
    except Exception:  # a bad pattern only loses its bold, never the alert
        return []


def _whole_word(folded: str, start: int, end: int) -> bool:
    """A keyword edge that is a letter or digit must not touch another (GBA is not in GBAS)."""
    if start > 0 and _is_word(folded[start]) and _is_word(folded[start - 1]):
        return False
    return not (end < len(folded) and _is_word(folded[end - 1]) and _is_word(folded[end]))


def _is_word(char: str) -> bool:
    return char.isalnum() and char < "\u2e80"  # CJK is not a "word" character here


def _bold(text: str, spans: Sequence[tuple[int, int]]) -> str:
    out: list[str] = []
    pos = 0
    for start, end in spans:
        out += [_escape(text[pos:start]), "<b>", _escape(text[start:end]), "</b>"]
        pos = end
    out.append(_escape(text[pos:]))
    return "".join(out)


def _title(story: Story, lang: str) -> str:
    return _clean(story.title) or _clean(story.link) or t(lang, "alert.untitled")


def _sources(sources: Sequence[str], lang: str, *, limit: int = MAX_SOURCES) -> str:
    names = [n for n in (_clean(s) for s in sources) if n]
    shown = [_shorten(n, _cut_point(n, SOURCE_CHARS)) for n in names[:limit]]
    more = len(names) - len(shown)
    return ", ".join(shown) + (" " + t(lang, "alert.more", count=more) if more else "")


def _when(published: datetime | None, tz: tzinfo) -> str:
    if published is None:
        return ""
    if published.tzinfo is None:  # the model promises aware UTC; be lenient with naive values
        published = published.replace(tzinfo=UTC)
    return published.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z").strip()


def _hashtags(topics: Sequence[str]) -> list[str]:
    tags: list[str] = []
    for topic in topics:
        tag = _NOT_TAG_CHAR.sub("_", topic.strip())[:TAG_CHARS].strip("_")
        if tag[:1].isdigit():
            tag = f"t{tag}"  # "#2024" is not a hashtag in Telegram
        if tag and f"#{tag}" not in tags:
            tags.append(f"#{tag}")
    return tags[:MAX_TAGS]


def _is_web_link(link: str) -> bool:
    try:
        parts = urlsplit(link.strip())
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.netloc)


def _clean(text: str) -> str:
    return _SPACES.sub(" ", _CONTROLS.sub("", text)).strip()


def _escape(text: str) -> str:
    return html.escape(text, quote=False)


def _utf16(text: str) -> int:
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _cut_point(text: str, limit: int) -> int:
    """How many chars of ``text`` to keep so that it plus an ellipsis fits ``limit`` chars.

    Prefers a word boundary in the last 30% of the window; CJK text, which has no spaces,
    is cut at a character.
    """
    if len(text) <= limit:
        return len(text)
    if limit <= 1:
        return 0
    window = text[: limit - 1]
    space = window.rfind(" ")
    return space if space >= int(0.7 * (limit - 1)) else limit - 1


def _shorten(text: str, keep: int) -> str:
    if keep >= len(text):
        return text
    return text[:keep].rstrip() + ELLIPSIS if keep > 0 else ""


def _largest(low: int, high: int, ok: Callable[[int], bool]) -> int:
    """The largest n in [low, high] with ok(n), assuming ok is monotone; low if none."""
    while low < high:
        mid = (low + high + 1) // 2
        if ok(mid):
            low = mid
        else:
            high = mid - 1
    return low

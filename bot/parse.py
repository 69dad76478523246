"""Feed bytes -> ``Entry`` values. The only module that imports feedparser.

``parse_feed`` is a plain top-level function with picklable arguments and result, so the
caller can run it in a process or thread pool, off the event loop.

What we do before feedparser sees the bytes, and why:

- **The DOCTYPE is removed**, internal subset and all. feedparser keeps "safe" internal
  entities, so one 100 KB entity referenced 10,000 times cost 60 s and 2.9 GiB; stripped, the
  same document parses in 0.1 s. Without a DTD, billion laughs cannot expand, and an external
  entity (``SYSTEM "file:///etc/passwd"``) is never read: its reference stays an undefined
  entity and feedparser's loose parser leaves it as literal text.
- **UTF-16/32 documents are re-encoded as UTF-8** first, so the DOCTYPE scan sees them too.
- **We decide the charset label**: a body that is valid UTF-8 is read as UTF-8 whatever a
  header or the XML declaration claims (a warning says so when a label disagreed: real servers
  label UTF-8 as ISO-8859-1 or GB2312, while real GBK/Big5 text is practically never valid
  UTF-8). Otherwise the first declared charset the body is valid in wins (a label the bytes
  cannot be decoded in is a lie: a GBK body labelled UTF-8 must not become Latin-1
  mojibake); with none, feedparser asks ``chardet``, which
  must be installed: without it undeclared GB2312/Big5 decode as windows-1252 mojibake.
  The media type handed to feedparser is always ``application/xml``, so ``text/xml`` without a
  charset means "see the XML declaration" (RFC 7303), not US-ASCII (RFC 3023).
- **No base URI is given to feedparser**: it would "resolve" bare Atom ids such as ``1020939``
  against the feed URL, so ids would change when a feed moves. Entry links are resolved here
  instead, against the feed URL (feedparser has already applied any ``xml:base``).

``sanitize_html`` and ``resolve_relative_uris`` are off: we keep text only, so neither the
sanitizer nor URL rewriting inside HTML bodies can change what the matcher sees.

What is a failure: no entries and a bozo document, or no feed at all (HTML page, empty body,
random bytes) raise ``ParseError``. A well-formed feed with zero items is fine. A bozo
document that still yields entries returns them with ``warning`` set.
"""

from __future__ import annotations

import codecs
import re
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import feedparser

from bot.errors import ParseError
from bot.model import Entry, ParsedFeed
from bot.text import html_to_text

__all__ = ["ParsedFeed", "parse_feed"]


# Encodings whose label feedparser should get as they are; everything else is "not UTF-8".
_UTF8_LABELS = frozenset({"utf-8", "utf8", "unicode-1-1-utf-8"})
_WIDE_BOMS = (
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_BE, "utf-16"),
    (codecs.BOM_UTF16_LE, "utf-16"),
)
# "<?" in UTF-16/32 without a byte order mark (XML 1.0, appendix F).
_WIDE_MARKERS = (
    (b"\x00\x00\x00<", "utf-32-be"),
    (b"<\x00\x00\x00", "utf-32-le"),
    (b"\x00<\x00?", "utf-16-be"),
    (b"<\x00?\x00", "utf-16-le"),
)
_XML_DECL_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._:-]+)""")
_XML_DECL = re.compile(r"^\s*<\?xml[^>]*\?>")
_CHARSET = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9._:-]+)", re.IGNORECASE)
_HTML_HINT = re.compile(rb"<!doctype\s+html|<html[\s>]", re.IGNORECASE)
_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml", "html", "xhtml"})
_MEDIA_SUFFIXES = (
    ".jpg .jpeg .png .gif .webp .svg .bmp .avif .mp3 .m4a .ogg .mp4 .mov .webm .pdf".split()
)
_SPACES = re.compile(r"\s+")


def parse_feed(content: bytes, *, url: str, headers: Mapping[str, str]) -> ParsedFeed:
    """Parse one fetched document into entries; raise ``ParseError`` when it is not a feed.

    ``headers`` are the response headers with lower-case keys; only the content type matters.
    """
    if not content.strip():
        raise ParseError(f"{url}: empty document, not a feed")
    content = _to_utf8_if_wide(content)
    content = strip_doctype(content)
    content_type, charset_warning = _content_type(content, headers)
    result = feedparser.parse(
        content,
        response_headers={"content-type": content_type},
        sanitize_html=False,
        resolve_relative_uris=False,
    )
    bozo = _bozo_text(result, declared="charset=" in content_type)
    entries = tuple(_entries(result.get("entries", ()), url))
    if not entries:
        _check_empty_feed(result, content, url, bozo)
    warnings = [w for w in (charset_warning, bozo) if w]
    return ParsedFeed(
        title=_text(result.get("feed", {}).get("title_detail")),
        entries=entries,
        warning="; ".join(warnings) or None,
        ttl=_ttl(result.get("feed", {}).get("ttl")),
    )


def _ttl(value: Any) -> float | None:
    """``<ttl>`` minutes as seconds; None when absent, not a number, or not positive."""
    text = str(value or "").strip()
    return 60.0 * int(text) if text.isdigit() and int(text) > 0 else None


def strip_doctype(content: bytes) -> bytes:
    """``content`` without its ``<!DOCTYPE ...>`` declaration (internal subset included).

    Only the prolog is searched: the DOCTYPE must come before the root element. Quotes and
    comments inside the internal subset are respected, so ``]>`` inside an entity value does
    not end it early. An unterminated DOCTYPE is cut to the end of the document.
    """
    pos = _skip_prolog_misc(content, 0)
    if content[pos : pos + 9].upper() != b"<!DOCTYPE":
        return content
    end = _doctype_end(content, pos + 9)
    # Keep its line breaks so feedparser's warnings still point at the right line.
    return content[:pos] + b"\n" * content.count(b"\n", pos, end) + content[end:]


def _skip_prolog_misc(content: bytes, pos: int) -> int:
    """Index of the first thing in the prolog that is not space, a comment or a PI."""
    while True:
        while pos < len(content) and content[pos] in b" \t\r\n":
            pos += 1
        closer = {b"<?": b"?>", b"<!--": b"-->"}
        for opener, close in closer.items():
            if content.startswith(opener, pos):
                found = content.find(close, pos + len(opener))
                pos = len(content) if found < 0 else found + len(close)
                break
        else:
            return pos


def _doctype_end(content: bytes, pos: int) -> int:
    """Index just past the ``>`` that closes a DOCTYPE whose body starts at ``pos``."""
    depth = 0
    while pos < len(content):
        char = content[pos : pos + 1]
        if content.startswith(b"<!--", pos):
            found = content.find(b"-->", pos + 4)
            pos = len(content) if found < 0 else found + 3
            continue
        if char in (b'"', b"'"):
            found = content.find(char, pos + 1)
            pos = len(content) if found < 0 else found + 1
            continue
        if char == b"[":
            depth += 1
        elif char == b"]":
            depth = max(0, depth - 1)
        elif char == b">" and depth == 0:
            return pos + 1
        pos += 1
    return pos


def _to_utf8_if_wide(content: bytes) -> bytes:
    """UTF-16/32 (and BOM-marked UTF-8) documents as plain UTF-8 with a matching declaration."""
    encoding = next((enc for bom, enc in _WIDE_BOMS if content.startswith(bom)), None)
    encoding = encoding or next((e for m, e in _WIDE_MARKERS if content.startswith(m)), None)
    if encoding is None:
        return content
    try:
        text = content.decode(encoding)
    except UnicodeDecodeError:
        return content  # feedparser reports it; nothing better to do here
    return _XML_DECL.sub("", text, count=1).lstrip("\ufeff").encode("utf-8")


def _content_type(content: bytes, headers: Mapping[str, str]) -> tuple[str, str | None]:
    """The content type to hand feedparser, and a warning when we overrode a charset label."""
    in_header = _CHARSET.search(headers.get("content-type") or "")
    in_xml = _XML_DECL_ENCODING.match(content[:500])
    labels: list[str] = []
    if in_header:
        labels.append(in_header.group(1))
    if in_xml:
        labels.append(in_xml.group(1).decode("ascii"))
    if not _is_utf8(content):
        fitting = [label for label in labels if _decodes(content, label)]
        if fitting:
            return "application/xml; charset=" + fitting[0], None
        # Every label is wrong (the body is not in it): let feedparser detect the charset.
        warning = (
            f"declared as {labels[0]} but the body is not; charset detected" if labels else None
        )
        return "application/xml", warning
    wrong = [lab for lab in labels if lab.lower() not in _UTF8_LABELS]
    warning = None
    if wrong and not content.isascii():
        warning = f"declared as {wrong[0]} but the body is UTF-8; read as UTF-8"
    return "application/xml; charset=utf-8", warning


def _decodes(content: bytes, label: str) -> bool:
    """Whether ``content`` is valid in the charset ``label`` (an unknown label is not)."""
    try:
        content.decode(label)
    except (LookupError, UnicodeDecodeError):
        return False
    return True


def _is_utf8(content: bytes) -> bool:
    try:
        content.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _bozo_text(result: Any, *, declared: bool) -> str | None:
    if not result.get("bozo"):
        return None
    exc = result.get("bozo_exception")
    if isinstance(exc, feedparser.CharacterEncodingOverride) and not declared:
        # feedparser words this "declared as utf-8", but nothing was declared: it guessed.
        return f"no charset declared; detected {result.get('encoding')}"
    return (str(exc) or type(exc).__name__) if exc is not None else "ill-formed document"


def _check_empty_feed(result: Any, content: bytes, url: str, bozo: str | None) -> None:
    """Raise unless a document without entries is a real, well-formed (empty) feed."""
    recognised = bool(result.get("version"))
    exc = result.get("bozo_exception")
    encoding_only = isinstance(
        exc, feedparser.CharacterEncodingOverride | feedparser.NonXMLContentType
    )
    if recognised and (bozo is None or encoding_only):
        return
    if _HTML_HINT.search(content[:2048]):
        raise ParseError(f"{url}: an HTML page, not a feed")
    reason = f" ({bozo})" if bozo else ""
    raise ParseError(f"{url}: no feed entries found{reason}")


def _entries(raw_entries: Iterable[Any], url: str) -> Iterable[Entry]:
    for raw in raw_entries:
        yield Entry(
            id=_entry_id(raw),
            link=_link(raw, url),
            title=_text(raw.get("title_detail")),
            summary=_text(raw.get("summary_detail")),
            content=" ".join(t for t in (_text(c) for c in raw.get("content", ())) if t),
            published=_published(raw),
            tags=_tags(raw.get("tags", ())),
        )


def _entry_id(raw: Any) -> str | None:
    value = raw.get("id")
    return value.strip() or None if isinstance(value, str) else None


def _link(raw: Any, url: str) -> str:
    """The entry's article link, absolute; "" when it has no http(s) link.

    Preference: the first ``rel=alternate`` link that is not a picture or media file (TDM's
    Atom lists the article and then an image, both without ``rel``), then any alternate, then
    feedparser's ``link`` (which also covers an RSS ``<guid isPermaLink="true">``).
    """
    alternates = [
        str(link.get("href", "")).strip()
        for link in raw.get("links", ())
        if link.get("rel", "alternate") == "alternate" and link.get("href")
    ]
    pages = [href for href in alternates if not _is_media(href)]
    candidates = [*pages, *alternates, str(raw.get("link") or "").strip()]
    for href in candidates:
        absolute = urljoin(url, href) if href else ""
        if urlsplit(absolute).scheme in ("http", "https"):
            return absolute
    return ""


def _is_media(href: str) -> bool:
    return urlsplit(href).path.lower().endswith(tuple(_MEDIA_SUFFIXES))


def _text(detail: Any) -> str:
    """Plain text of a feedparser text construct: markup removed only when it is markup."""
    if not detail:
        return ""
    value = str(detail.get("value") or "")
    kind = str(detail.get("type") or "").lower()
    if kind in _HTML_TYPES or kind == "cdata":  # TDM writes <content type="CDATA">
        return html_to_text(value)
    return _SPACES.sub(" ", value).strip()


def _published(raw: Any) -> datetime | None:
    """``published``, else ``updated``, as aware UTC (feedparser's *_parsed are UTC already)."""
    for key in ("published_parsed", "updated_parsed"):
        # dict.get: FeedParserDict.get("updated_parsed") warns and aliases to published_parsed.
        parsed: time.struct_time | None = dict.get(raw, key)
        if parsed is None:
            continue
        try:
            return datetime(*parsed[:6], tzinfo=UTC)
        except (TypeError, ValueError):
            continue
    return None


def _tags(raw_tags: Iterable[Any]) -> tuple[str, ...]:
    terms = (_SPACES.sub(" ", str(tag.get("term") or "")).strip() for tag in raw_tags)
    return tuple(dict.fromkeys(term for term in terms if term))

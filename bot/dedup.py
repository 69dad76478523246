"""Keys that decide when two feed items are the same item or the same story.

- ``entry_key``: an item's identity within its feed: the guid, else the link as written
  (fragment included: one page may carry several items as ``#a1``, ``#b2``), else a hash of
  title, date, summary and content. A feed that re-sends an item with the same key is not
  alerted twice; one that rewrites tracking parameters in its links gets new keys, and the
  story's canonical URL then keeps the item from alerting again.
- ``canonical_url``: scheme and host lower-cased, default port dropped, fragment dropped,
  tracking parameters (``utm_*``, ``fbclid``, ``gclid`` and the like) removed, the remaining
  query parameters sorted. Two items whose canonical URLs are equal are one story, whatever
  feed carried them.
- ``title_key``: the title folded as the matcher folds text (NFKC, casefold, Traditional ->
  Simplified), with punctuation and spaces removed. Equal title keys within the story window
  (default 72 h) make one story. Titles shorter than ``MIN_TITLE_KEY`` characters after folding
  give no key: "Markets" or "快訊" are not evidence of the same story.
"""

from __future__ import annotations

import hashlib
import unicodedata
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from bot.model import Entry
from bot.text import fold

MIN_TITLE_KEY = 8

_TRACKING_PARAMS = frozenset(
    {
        "fbclid",
        "gclid",
        "dclid",
        "gbraid",
        "wbraid",
        "msclkid",
        "yclid",
        "twclid",
        "igshid",
        "mc_cid",
        "mc_eid",
        "_hsenc",
        "_hsmi",
        "mkt_tok",
        "spm",
        "cmpid",
        "ocid",
    }
)
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _is_tracking(name: str) -> bool:
    lowered = name.lower()
    return lowered.startswith("utm_") or lowered in _TRACKING_PARAMS


def canonical_url(url: str) -> str:
    """The URL two outlets' links to one article most likely share; '' for an empty url."""
    url = url.strip()
    if not url:
        return ""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return url
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if port is not None and port != _DEFAULT_PORTS.get(scheme):
        host = f"{host}:{port}"
    query = sorted(
        (k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _is_tracking(k)
    )
    return urlunsplit((scheme, host, parts.path or "/", urlencode(query), ""))


def title_key(title: str) -> str:
    """The folded title without punctuation, symbols and spaces; '' when too short to trust."""
    key = "".join(ch for ch in fold(title) if unicodedata.category(ch)[0] in "LN")
    return key if len(key) >= MIN_TITLE_KEY else ""


def entry_key(entry: Entry) -> str:
    """The item's identity within its feed: guid, else its link, else a content hash."""
    if entry.id and entry.id.strip():
        return entry.id.strip()
    if entry.link.strip():
        return entry.link.strip()
    published = entry.published.isoformat() if entry.published else ""
    text = "\x00".join((entry.title, published, entry.summary, entry.content))
    return f"sha256:{hashlib.sha256(text.encode()).hexdigest()[:32]}"

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
- near duplicates (``near_duplicate``): a reworded headline of the same news, e.g.
  香港金管局發出首批穩定幣牌照 and 金管局向首批穩定幣發行人發出牌照. A title is cut into
  units (each CJK character, each Latin word or number, after ``fold``) and shingled into
  overlapping pairs of units. Two titles are near duplicates when all of these hold:

  * they share at least ``MIN_SHARED_SHINGLES`` (7) shingles;
  * the shared shingles are at least ``MIN_CONTAINMENT`` (0.6) of the shorter title's and
    their Jaccard similarity is at least ``MIN_JACCARD`` (0.4);
  * every number in one title appears in the other (``恒指跌200點`` never joins
    ``恒指跌350點``: market reports differ mostly in their figures).

  A new title is compared only with the stored titles that share one of its rarest shingles
  (``TitleIndex``, in memory). Near duplicates join only stories first seen within the story
  window (default 72 h, ``dedup.window``) and, like title keys, only across feeds: within
  one feed a similar headline is a new item ("Hong Kong stocks close lower" every day).
  Measured on the real headlines in ``../shared/data`` (dev corpus and the RTHK/TDM feeds,
  pairs of distinct headlines): see the notes of the change that introduced it.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import sys
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from bot.model import Entry
from bot.text import fold

MIN_TITLE_KEY = 8
MIN_SHARED_SHINGLES = 7
MIN_CONTAINMENT = 0.6
MIN_JACCARD = 0.4

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


# A unit is one CJK (or other non-Latin) letter, or a run of Latin letters and digits.
_UNITS = re.compile(r"[a-z0-9]+|[^\W\d_a-z]", re.UNICODE)
_NUMBERS = re.compile(r"\d+(?:\.\d+)?")


def near_duplicate(a: str, b: str) -> bool:
    """Whether titles ``a`` and ``b`` tell the same news in other words (module docstring)."""
    return similar_signatures(title_signature(a), title_signature(b))


@dataclass(frozen=True, slots=True)
class TitleSignature:
    """What near-duplicate matching compares, computed once per title (folding is costly)."""

    shingles: frozenset[str]
    numbers: frozenset[str]


def title_signature(title: str) -> TitleSignature:
    folded = fold(title)
    units = _UNITS.findall(folded)
    shingles = (
        frozenset(f"{a} {b}" for a, b in itertools.pairwise(units))
        if len(units) >= 2
        else frozenset(units)
    )
    return TitleSignature(shingles, frozenset(_NUMBERS.findall(folded)))


def similar_signatures(a: TitleSignature, b: TitleSignature) -> bool:
    return a.numbers == b.numbers and similar_shingles(a.shingles, b.shingles)


def similar_shingles(a: frozenset[str], b: frozenset[str]) -> bool:
    return _similar_counts(len(a & b), len(a), len(b))


def _similar_counts(shared: int, a: int, b: int) -> bool:
    """``similar_shingles`` from the sizes: ``shared`` shingles of ``a`` and ``b``."""
    if shared < MIN_SHARED_SHINGLES:
        return False
    return shared / min(a, b) >= MIN_CONTAINMENT and shared / (a + b - shared) >= MIN_JACCARD


class TitleIndex:
    """Stored titles by shingle, to find a new title's near duplicates among many quickly.

    ``similar(signature)`` returns exactly the indexed titles ``similar_signatures`` accepts,
    best first (most shared shingles, then lowest id), without comparing the title with every
    indexed one: near duplicates have equal numbers and share ``MIN_SHARED_SHINGLES``
    shingles, so a title with numbers looks only at the titles with the same numbers, and any
    title looks only at those sharing one of its ``k - MIN_SHARED_SHINGLES + 1`` rarest
    shingles (one sharing ``MIN_SHARED_SHINGLES`` of its ``k`` must share one of those; the
    "prefix filter" of similarity joins), whichever list is shorter. Headlines that repeat
    a template with other figures (market closes, typhoon signals) then cost little.

    Memory per title is small (it bounds the service's memory: 1,000 feeds keep ~30,000
    titles in a 72-hour window): its shingles are kept as a tuple of strings shared with the
    index's keys, its numbers as one string, and a posting is a bare id until a second title
    shares the shingle, then a plain list of ids (ascending: titles are added in id order).
    """

    def __init__(self) -> None:
        # id -> (its shingles, its numbers' key or '', its stamp)
        self._titles: dict[int, tuple[tuple[str, ...], str, float]] = {}
        self._postings: dict[str, int | list[int]] = {}

    def __len__(self) -> int:
        return len(self._titles)

    def __contains__(self, title_id: object) -> bool:
        return title_id in self._titles

    def add(
        self, title_id: int, title: str, stamp: float, signature: TitleSignature | None = None
    ) -> None:
        """Index ``title`` under ``title_id``; ``stamp`` (e.g. when first seen) for ``prune``;
        ``signature``: the title's, when the caller has it already."""
        if title_id in self._titles:
            return
        signature = signature or title_signature(title)
        if len(signature.shingles) < MIN_SHARED_SHINGLES:
            return  # too short to be anyone's near duplicate
        shared = tuple(self._post(shingle, title_id) for shingle in signature.shingles)
        numbers = _numbers_key(signature.numbers)
        if numbers:
            numbers = self._post(numbers, title_id)
        self._titles[title_id] = (shared, numbers, stamp)

    def _post(self, key: str, title_id: int) -> str:
        """Add ``title_id`` to ``key``'s posting; returns the key interned, so every title
        with this shingle shares one string. Most shingles belong to one title: their
        posting is the bare id, a list only from the second title on."""
        key = sys.intern(key)
        posting = self._postings.get(key)
        if posting is None:
            self._postings[key] = title_id
        elif isinstance(posting, int):
            self._postings[key] = [posting, title_id]
        else:
            posting.append(title_id)
        return key

    def similar(self, signature: TitleSignature) -> list[tuple[int, int]]:
        """``(-shared shingles, id)`` of each indexed title similar to ``signature``, sorted."""
        shingles = signature.shingles
        k = len(shingles)
        if k < MIN_SHARED_SHINGLES:
            return []
        postings = self._postings
        rarest = sorted((_size(postings.get(s)), s) for s in shingles)
        prefix = rarest[: k - MIN_SHARED_SHINGLES + 1]
        numbers = _numbers_key(signature.numbers)
        same_numbers = _ids(postings.get(numbers)) if numbers else None
        ids: Iterable[int]
        if same_numbers is not None and len(same_numbers) <= sum(n for n, _ in prefix):
            ids = same_numbers
        else:
            ids = {i for n, s in prefix if n for i in _ids(postings[s])}
        found = []
        titles = self._titles
        for title_id in ids:
            other, other_numbers, _ = titles[title_id]
            if other_numbers != numbers:
                continue
            shared = len(shingles.intersection(other))
            if _similar_counts(shared, k, len(other)):
                found.append((-shared, title_id))
        found.sort()
        return found

    def prune(self, before: float) -> None:
        """Forget the titles stamped before ``before``."""
        kept = {i: t for i, t in self._titles.items() if t[2] >= before}
        if len(kept) == len(self._titles):
            return
        self._titles = {}
        self._postings = {}
        for title_id, (shingles, numbers, stamp) in sorted(kept.items()):
            shared = tuple(self._post(shingle, title_id) for shingle in shingles)
            if numbers:
                self._post(numbers, title_id)
            self._titles[title_id] = (shared, numbers, stamp)


def _size(posting: int | list[int] | None) -> int:
    return 0 if posting is None else 1 if isinstance(posting, int) else len(posting)


def _ids(posting: int | list[int] | None) -> Sequence[int]:
    return () if posting is None else (posting,) if isinstance(posting, int) else posting


def _numbers_key(numbers: frozenset[str]) -> str:
    """The index key of the titles carrying exactly ``numbers`` (no shingle has a NUL); ''
    for none. Kept per title instead of the set: equal keys, equal sets, in a fraction of
    the memory (a frozenset of two numbers is 216 bytes)."""
    return "\x00" + " ".join(sorted(numbers)) if numbers else ""

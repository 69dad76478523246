"""Text as the matcher sees it: HTML to plain text, and folding.

``fold`` makes two texts that a reader would call the same keyword compare equal: NFKC
(full-width -> half-width, compatibility forms), casefold, and Traditional -> Simplified
Chinese (OpenCC ``t2s``), so 粵港澳大灣區, 粤港澳大湾区 and their full-width forms are one.

Folding runs on every entry, so it avoids the slow general paths when it can: ASCII text is
only lower-cased; CPython's NFKC costs ~0.25 us per CJK character, so only runs of characters
that NFKC changes are normalised; OpenCC runs only when a character it would convert is
present (Simplified and English text never pays for it). The result is the same as
``t2s(casefold(NFKC(text)))``.
"""

from __future__ import annotations

import html
import re
import unicodedata
from functools import cache
from html.parser import HTMLParser

import opencc

_BLOCK_TAGS = frozenset(
    "p br div li ul ol tr td th h1 h2 h3 h4 h5 h6 blockquote pre section article header "
    "footer table hr figure figcaption".split()
)
_SKIP_TAGS = frozenset({"script", "style", "head", "title", "noscript"})
_SPACES = re.compile(r"\s+")
# Blocks whose characters OpenCC t2s may convert: CJK Ext A, Unified, Compatibility.
_CJK_RANGES = ((0x3400, 0x4DC0), (0x4E00, 0xA000), (0xF900, 0xFB00))


class _TextCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            self._skip += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self._skip = max(0, self._skip - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def html_to_text(markup: str) -> str:
    """Visible text of an HTML fragment, entities decoded, whitespace collapsed."""
    if "<" not in markup and "&" not in markup:
        return _SPACES.sub(" ", markup).strip()
    collector = _TextCollector()
    collector.feed(markup)
    collector.close()
    return _SPACES.sub(" ", html.unescape("".join(collector.parts))).strip()


@cache
def _t2s() -> opencc.OpenCC:
    # Loaded once on first use, not at import: the converter reads its tables from disk.
    return opencc.OpenCC("t2s")


def _char_class(chars: list[str]) -> re.Pattern[str]:
    return re.compile("[" + "".join(re.escape(c) for c in chars) + "]+")


@cache
def _compat_runs() -> re.Pattern[str]:
    """Runs of BMP characters that NFKC changes (full-width forms, compatibility ideographs)."""
    chars = [
        chr(i)
        for i in range(0x80, 0x10000)
        if not 0xD800 <= i < 0xE000 and unicodedata.normalize("NFKC", chr(i)) != chr(i)
    ]
    return _char_class(chars)


@cache
def _char_pairs() -> tuple[tuple[str, str], ...]:
    """(character, its t2s form) for every CJK character that t2s changes, converted once."""
    chars = [chr(i) for lo, hi in _CJK_RANGES for i in range(lo, hi)]
    converted = str(_t2s().convert("\n".join(chars))).split("\n")
    return tuple((c, s) for c, s in zip(chars, converted, strict=True) if c != s)


@cache
def _traditional() -> re.Pattern[str]:
    """Characters that t2s converts."""
    return _char_class([c for c, _ in _char_pairs()])


@cache
def char_variants() -> dict[str, tuple[str, ...]]:
    """Each Simplified character with every character that folds to it, itself first.

    The matcher uses this to find a folded keyword in unconverted text: 湾区 becomes
    [湾灣][区區], which costs nothing per entry, where converting each text costs ~50 us.
    """
    variants: dict[str, list[str]] = {}
    for trad, simp in _char_pairs():
        if len(simp) == 1:
            variants.setdefault(simp, [simp]).append(trad)
    return {simp: tuple(chars) for simp, chars in variants.items()}


# The compatibility characters common in Chinese news text: full-width punctuation and the
# ideographic space. ``str.replace`` on these is far cheaper than any regex scan.
_COMMON_COMPAT = tuple(
    (c, unicodedata.normalize("NFKC", c))
    for c in "\uff0c\uff1a\uff1b\uff01\uff1f\uff08\uff09\u3000\uff05\uff0e"
)


def _nfkc(text: str) -> str:
    if unicodedata.is_normalized("NFKC", text):
        return text
    for char, normal in _COMMON_COMPAT:
        if char in text:
            text = text.replace(char, normal)
    if unicodedata.is_normalized("NFKC", text):
        return text
    # Replacing a run by its NFKC form keeps the string's NFKD, so the result is unchanged;
    # the final check catches what runs cannot (combining sequences, astral characters).
    text = _compat_runs().sub(lambda m: unicodedata.normalize("NFKC", m.group()), text)
    if unicodedata.is_normalized("NFKC", text):
        return text
    return unicodedata.normalize("NFKC", text)


def fold_width_case(text: str) -> str:
    """NFKC and casefold, without Traditional -> Simplified (see ``char_variants``)."""
    if text.isascii():
        return text.lower()
    return _nfkc(text).casefold()


def fold(text: str) -> str:
    """NFKC, casefold, Traditional -> Simplified. Used for keywords and texts alike."""
    if text.isascii():
        return text.lower()
    folded = _nfkc(text).casefold()
    if _traditional().search(folded) is None:
        return folded
    return str(_t2s().convert(folded))


def fold_pattern(pattern: str) -> str:
    """A ``re:`` pattern made comparable with folded text: NFKC and Traditional -> Simplified.

    No casefold: it would turn escapes such as ``\\S`` or ``\\D`` into their opposites; the
    matcher compiles patterns case-insensitively instead.
    """
    if pattern.isascii():
        return pattern
    return str(_t2s().convert(unicodedata.normalize("NFKC", pattern)))


# Dash-like characters and the underscore read as a hyphen; whitespace runs as one space. The
# matcher lets a space or hyphen inside a keyword also be a space, a hyphen or nothing, so
# "e-CNY", "e CNY" and "eCNY" are one keyword.
_DASHES = ("\u2010", "\u2011", "\u2012", "\u2013", "\u2014", "\u2212", "_")


def match_form(text: str, *, chinese: bool = True) -> str:
    """``fold(text)`` with dashes as ``-`` and whitespace runs as one space.

    ``chinese=False`` leaves Traditional characters as they are (``fold_width_case``).
    The checks with ``in`` are C-speed; the rebuilding only runs on text that needs it
    (feed text usually arrives with whitespace already collapsed by ``html_to_text``).
    """
    folded = fold(text) if chinese else fold_width_case(text)
    for dash in _DASHES:
        if dash in folded:
            folded = folded.replace(dash, "-")
    # Spelled out rather than any(...) over a tuple: this runs on every entry.
    if (
        "  " in folded
        or "\n" in folded
        or "\t" in folded
        or "\r" in folded
        or "\f" in folded
        or "\v" in folded
    ):
        folded = _SPACE_RUNS.sub(" ", folded)
    return folded


_SPACE_RUNS = re.compile(r"\s+")

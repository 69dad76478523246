"""Text as the matcher sees it: HTML to plain text, and folding.

``html_to_text`` reads a feed fragment as CPython 3.11's ``html.parser`` tokenizes it: block
tags become a space, script/style/head/title/noscript content is dropped, a ``<`` that starts
no complete construct stays text, and each text part's entities are decoded once (the old
code decoded twice, so ``&amp;lt;`` became ``<``; it now reads ``&lt;``). It is a single
compiled regex tokenizer, split in C, rather than an ``HTMLParser`` subclass because the
parser's per-character Python work took ~48 us for a 500-character summary against ~10 us
now, and a poll converts ~6,000 of them.

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

import opencc

_BLOCK_TAGS = frozenset(
    "p br div li ul ol tr td th h1 h2 h3 h4 h5 h6 blockquote pre section article header "
    "footer table hr figure figcaption".split()
)
_SKIP_TAGS = frozenset({"script", "style", "head", "title", "noscript"})
# The skip tags whose content is still markup: html.parser counts them open and closed.
_COUNTED_SKIP_TAGS = frozenset({"head", "title", "noscript"})
# Blocks whose characters OpenCC t2s may convert: CJK Ext A, Unified, Compatibility.
_CJK_RANGES = ((0x3400, 0x4DC0), (0x4E00, 0xA000), (0xF900, 0xFB00))

# The token grammar is html.parser's own (its tagfind/attrfind/locatestarttagend patterns and
# goahead's fallbacks), so the text is what html.parser gives, malformed markup included.
# A tag name runs to whitespace, "/", ">" or NUL; html.parser compares it lower-cased.
_NAME_END = r"(?![^\t\n\r\f />\x00])"
# Attributes as attrfind_tolerant takes them, one committed match at a time.
_ATTRS = (
    r"(?:\s|/(?!>))*+"
    r"""(?>(?<=['"\s/])[^\s/>][^\s/=>]*+(?:\s*=+\s*(?:'[^']*'|"[^"]*"|(?!['"])[^>\s]*))?"""
    r"(?:\s|/(?!>))*+)*+"
)
# locatestarttagend_tolerant: where html.parser ends a start tag it then shows as text.
_LOCATE = (
    r"""(?>[a-zA-Z][^\t\n\r\f />\x00]*(?:[\s/]*(?:(?<=['"\s/])[^\s/>][^\s/=>]*"""
    r"""(?:\s*=+\s*(?:'[^']*'|"[^"]*"|(?!['"])[^>\s]*)\s*)?(?:\s|/(?!>))*)*)?\s*)"""
)
# Marked sections html.parser knows (others raised AssertionError); <![CDATA[...]]> is dropped.
_MARKED = r"(?ai:temp|cdata|ignore|include|rcdata)(?![-_.a-zA-Z0-9])"
_MS_MARKED = r"(?ai:if|else|endif)(?![-_.a-zA-Z0-9])"


def _raw_text_element(name: str) -> str:
    """Script or style: start tag, content up to the end tag (or the end of input), end tag."""
    end = rf"/\s*(?ai:{name})\s*>"  # ASCII: html.parser reads </ſcript> as content
    return rf"(?ai:{name}){_NAME_END}{_ATTRS}>[^<]*+(?:<(?!{end})[^<]*+)*+(?:<{end})?"


# Every token starts at "<"; what no alternative matches (a "<" before a space or digit, a
# construct with no ">" after it) stays text.
_TOKEN = re.compile(
    "<(?:"
    # script and style, content included (html.parser's CDATA mode)
    f"{_raw_text_element('script')}|{_raw_text_element('style')}"
    # a start tag, or an end tag as html.parser's endtagfind reads it (</ p >): the empty
    # group "end" marks an end tag, "name" holds the name either way
    r"|(?:/\s*+(?P<end>))?(?P<name>[a-zA-Z](?(end)[-.a-zA-Z0-9:_]*+|[^\t\n\r\f />\x00]*+))"
    rf"(?(end)\s*+>|{_ATTRS}/?>)"
    # comments, marked sections (<![CDATA[...]]>, <![if IE]>)
    r"|!--[\s\S]*?--\s*>"
    rf"|!\[(?:{_MARKED}[\s\S]*?\]\s*\]\s*>|{_MS_MARKED}[\s\S]*?\]\s*>)"
    # "rare": what only the exact path handles. An end tag that endtagfind rejects
    # (</p class="x">): the name is all that counts. Then the broken constructs html.parser
    # shows as text: a start tag whose attributes it rejects, or cut short by a NUL; a start
    # tag, comment or marked section that does not end before the next ">" (text up to it).
    r"|(?P<rare>/(?P<end_name>[a-zA-Z][^\t\n\r\f />\x00]*+)[^>]*+>"
    rf"|{_LOCATE}(?:/?>|(?=[^>/a-zA-Z=]))|[a-zA-Z][^>]*+>"
    rf"|!--[^>]*+>|!\[(?:{_MARKED}|{_MS_MARKED})[^>]*+>)"
    # bogus comments, </>, declarations, processing instructions
    r"|[/!?][^>]*+>"
    ")"
)
_STRIDE = _TOKEN.groups + 1
_NAME = _TOKEN.groupindex["name"]
_RARE = _TOKEN.groupindex["rare"]
_BLOCK_SPACE = dict.fromkeys(_BLOCK_TAGS, " ")
# <title/>: html.parser calls it a start and an end tag, so it opens nothing.
_SELF_CLOSING = re.compile(rf"<[a-zA-Z][^\t\n\r\f />\x00]*+{_ATTRS}/>").fullmatch


def _visible_text(markup: str) -> str:
    """Text of markup with entities decoded: the usual case, in a few C-level calls."""
    if "<" in markup[markup.rfind(">") + 1 :]:
        return _visible_text_exact(markup)  # a "<" with no ">" after it: see there
    # [text, end, name, rare, end_name, text, end, name, ...]: each token's groups between texts.
    parts = _TOKEN.split(markup)
    if len(parts) == 1:  # no token
        return html.unescape(markup)
    # One lower() for all names; NUL occurs in no tag name, so positions survive.
    names = "\0".join([name or "" for name in parts[_NAME::_STRIDE]]).lower().split("\0")
    if any(parts[_RARE::_STRIDE]) or not _COUNTED_SKIP_TAGS.isdisjoint(names):
        return _visible_text_exact(markup)
    parts[_NAME::_STRIDE] = map(_BLOCK_SPACE.get, names)
    if "&" in markup:
        # Each text part on its own, as html.parser decoded them: no reference spans a tag.
        parts[::_STRIDE] = map(html.unescape, parts[::_STRIDE])
    return "".join(filter(None, parts))


def _visible_text_exact(markup: str) -> str:
    """``_visible_text`` token by token: head/title/noscript counted, broken markup as text."""
    # A "<" with no ">" after it starts no token (each ends at a ">"), yet the search would scan
    # from each to the end of input: quadratic, 60 KB of "<a " took html.parser 30 s. The regex
    # gets them as \x01, which starts no token and which every pattern treats as it treats "<"
    # inside one; cutting the text off instead would change tags whose quoted values run past.
    last = markup.rfind(">") + 1
    scan = markup[:last] + markup[last:].replace("<", "\x01")
    parts: list[str] = []
    skip = 0  # open skip elements; html.parser closes one at any skip tag's end tag
    pos = 0
    for token in _TOKEN.finditer(scan):
        start = token.start()
        if not skip:
            parts.append(html.unescape(markup[pos:start]))
        pos = token.end()
        name = token["name"] or token["end_name"]
        if name is None:
            if token["rare"] is not None and not skip:
                parts.append(html.unescape(markup[start:pos]))
            continue
        name = name.lower()
        if name in _BLOCK_TAGS:
            parts.append(" ")  # even inside a skipped element, as html.parser's handlers did
        elif token["end"] is None and token["end_name"] is None:
            if name in _COUNTED_SKIP_TAGS and not _SELF_CLOSING(token.group()):
                skip += 1
        elif skip and name in _SKIP_TAGS:
            skip -= 1
    if not skip:
        parts.append(html.unescape(markup[pos:]))
    return "".join(parts)


def html_to_text(markup: str) -> str:
    """Visible text of an HTML fragment, entities decoded once, whitespace collapsed."""
    if "<" in markup:
        markup = _visible_text(markup)
    elif "&" in markup:
        markup = html.unescape(markup)
    return " ".join(markup.split())


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

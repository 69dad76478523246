"""The compiled matcher: ``Entry`` -> ``Hit``s with the keywords that matched.

Semantics operators rely on (README repeats them):

- Keywords and texts are compared after ``text.fold``: NFKC (full-width = half-width),
  casefold, Traditional = Simplified Chinese; dashes and underscores read as hyphens and
  whitespace runs as one space. A space or hyphen inside a keyword matches a space, a
  hyphen or nothing: ``e-CNY`` matches ``e-CNY``, ``e CNY`` and ``eCNY``; ``Hong Kong``
  matches ``Hong-Kong`` and ``HongKong`` (phrases of more than four words: all gaps alike).
- A keyword edge that is a letter or digit must not touch another letter or digit in the
  text (Latin whole words: ``GBA`` matches ``在GBA發展`` but not ``GBAS``); CJK characters
  are not letters here, so CJK keywords match as substrings.
- ``re:`` patterns (RE2, case-insensitive) run on each field's folded text (as above), and
  only when the cheap checks leave a topic's result open.
- Fields are searched separately: a keyword never spans the title and the summary.

How: one Aho-Corasick automaton holds every spelling of every literal keyword of every
topic, in every mix of Simplified and Traditional characters (粤港澳大湾区 is also 粵港澳大灣區
and 粤港澳大灣區), so texts need only NFKC and casefold, not the ~50 us Chinese conversion; it
runs once per entry over the text of all needed fields (joined by NUL, which no keyword
contains). A topic is evaluated only when one of the keywords
it cannot match without was found, with set operations on the found keywords.
"""

from __future__ import annotations

import itertools
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

import ahocorasick_rs

from bot.model import FIELDS, AllOf, AnyOf, Entry, Feed, Hit, Keyword, NotOf, Topic
from bot.model import Node as RuleNode
from bot.rulebook import Rulebook, compile_regex, keyword_key
from bot.text import char_variants, fold, match_form

_SEP = "\x00"
_GAP_FORMS = (" ", "-", "")
_MAX_GAPS = 3  # a phrase with more gaps gets only the uniform spellings (all spaces ...)
_MAX_SCRIPTS = 256  # a keyword with more Traditional spellings gets only the two extremes


class _Searcher(Protocol):
    def search(self, text: str) -> object | None: ...


def _is_word(char: str) -> bool:
    return char.isalnum() and char < "\u2e80"


def spellings(key: str) -> set[str]:
    """Every text form a keyword key matches: each inner gap a space, a hyphen or nothing."""
    words = key.split(" ")
    if len(words) - 1 > _MAX_GAPS:
        return {gap.join(words) for gap in _GAP_FORMS}
    forms = set()
    for gaps in itertools.product(_GAP_FORMS, repeat=len(words) - 1):
        forms.add(words[0] + "".join(g + w for g, w in zip(gaps, words[1:], strict=True)))
    return forms


def scripts(form: str, variants: dict[str, tuple[str, ...]]) -> set[str]:
    """Every mix of Simplified and Traditional characters of a folded (Simplified) form."""
    options = [variants.get(char, (char,)) for char in form]
    count = 1
    for chars in options:
        count *= len(chars)
    if count > _MAX_SCRIPTS:
        return {form, "".join(chars[-1] for chars in options)}
    return {"".join(chars) for chars in itertools.product(*options)}


class _Context:
    """What one entry offers one field mask: found keyword keys and lazy regex results."""

    __slots__ = ("found", "mask", "regex_results", "view")

    def __init__(self, view: _EntryView, mask: int):
        self.view = view
        self.mask = mask
        self.found = view.found_in(mask)
        self.regex_results: dict[int, bool] = {}

    def regex(self, rid: int) -> bool:
        result = self.regex_results.get(rid)
        if result is None:
            result = self.view.search(rid, self.mask)
            self.regex_results[rid] = result
        return result


@dataclass(frozen=True, slots=True)
class _Item:
    """One child in rule order: a literal key, a regex id, or a sub-node."""

    text: str
    key: int = -1
    regex: int = -1
    node: _Branch | _Not | None = None


@dataclass(frozen=True, slots=True)
class _Branch:
    """``any`` (every=False) or ``all`` (every=True), literal keys checked first as sets."""

    every: bool
    keys: frozenset[int]
    regexes: tuple[int, ...]
    nodes: tuple[_Branch | _Not, ...]
    items: tuple[_Item, ...]

    def test(self, ctx: _Context) -> bool:
        if self.every:
            return (
                self.keys <= ctx.found
                and all(n.test(ctx) for n in self.nodes)
                and all(ctx.regex(r) for r in self.regexes)
            )
        return (
            not self.keys.isdisjoint(ctx.found)
            or any(n.test(ctx) for n in self.nodes)
            or any(ctx.regex(r) for r in self.regexes)
        )

    def collect(self, ctx: _Context, out: dict[int, str]) -> None:
        """The keywords of the true branches, first spelling of each key, in rule order."""
        for item in self.items:
            if item.node is not None:
                if item.node.test(ctx):
                    item.node.collect(ctx, out)
            elif item.key in ctx.found:
                out.setdefault(item.key, item.text)
            elif item.regex >= 0 and ctx.regex(item.regex):
                out.setdefault(-1 - item.regex, item.text)


@dataclass(frozen=True, slots=True)
class _Not:
    child: _Branch | _Not

    def test(self, ctx: _Context) -> bool:
        return not self.child.test(ctx)

    def collect(self, ctx: _Context, out: dict[int, str]) -> None:
        """Keywords under a ``not`` never explain a match."""


@dataclass(frozen=True, slots=True)
class _Topic:
    id: str
    mask: int
    tree: _Branch | _Not
    tags: frozenset[str]
    feeds: frozenset[str]
    scoped: bool

    def in_scope(self, feed: Feed) -> bool:
        if not self.scoped:
            return True
        return (
            feed.url in self.feeds or feed.name in self.feeds or not self.tags.isdisjoint(feed.tags)
        )


class _EntryView:
    """One entry's folded text and the keyword keys found in it, by field."""

    def __init__(self, matcher: Matcher, entry: Entry):
        self.matcher = matcher
        segments, self.fields = matcher.segments(entry)
        # Traditional characters stay: the automaton holds their spellings (``scripts``).
        self.text = match_form(_SEP.join(segments), chinese=False)
        self.by_key: dict[int, int] = {}
        self._parts: list[str] | None = None
        self._masks: dict[int, frozenset[int]] = {}
        matcher.scan(self)

    def found_in(self, mask: int) -> frozenset[int]:
        found = self._masks.get(mask)
        if found is None:
            found = frozenset(k for k, m in self.by_key.items() if m & mask)
            self._masks[mask] = found
        return found

    def search(self, rid: int, mask: int) -> bool:
        if self._parts is None:
            # Regexes are folded to Simplified, so the text they see is converted too.
            self._parts = [fold(part) for part in self.text.split(_SEP)]
        regex = self.matcher.regexes[rid]
        return any(
            (1 << f) & mask and regex.search(part) is not None
            for part, f in zip(self._parts, self.fields, strict=True)
        )


class Matcher:
    """Rulebook compiled for speed. Immutable after ``compile``; safe to share."""

    def __init__(self) -> None:
        self.topics: tuple[_Topic, ...] = ()
        self.regexes: list[_Searcher] = []
        self.fields: tuple[int, ...] = ()
        self._keys: dict[str, int] = {}
        self._patterns: list[str] = []
        self._pattern_keys: list[tuple[int, ...]] = []
        self._left: list[bool] = []
        self._right: list[bool] = []
        self._automaton: ahocorasick_rs.AhoCorasick | None = None
        self._one_mask = True
        self._union = 0
        self._always: tuple[int, ...] = ()
        self._by_key: dict[int, tuple[int, ...]] = {}

    @classmethod
    def compile(cls, rulebook: Rulebook) -> Matcher:
        """Build the automaton, the regex programs and the topic trees of ``rulebook``."""
        matcher = cls()
        matcher._build(rulebook.topics)
        return matcher

    # -- compiling -----------------------------------------------------------------------

    def _build(self, topics: Iterable[Topic]) -> None:
        compiled = [self._topic(t) for t in topics]
        self.topics = tuple(compiled)
        masks = {t.mask for t in compiled}
        self._one_mask = len(masks) <= 1
        union = 0
        for mask in masks:
            union |= mask
        self._union = union
        self.fields = tuple(i for i in range(len(FIELDS)) if union >> i & 1)
        self._index_topics()
        self._build_automaton()

    def _topic(self, topic: Topic) -> _Topic:
        mask = sum(1 << FIELDS.index(f) for f in set(topic.fields))
        tags = frozenset(f[4:] for f in topic.feeds if f.startswith("tag:"))
        feeds = frozenset(f for f in topic.feeds if not f.startswith("tag:"))
        tree = self._node(topic.match)
        return _Topic(topic.id, mask, tree, tags, feeds, bool(topic.feeds))

    def _node(self, node: RuleNode) -> _Branch | _Not:
        if isinstance(node, NotOf):
            return _Not(self._node(node.child))
        if isinstance(node, Keyword):
            return self._branch(False, (node,))
        return self._branch(isinstance(node, AllOf), node.children)

    def _branch(self, every: bool, children: tuple[RuleNode, ...]) -> _Branch:
        # An any inside an any (an all inside an all) is one set: fewer calls per entry.
        flat = AllOf if every else AnyOf
        while any(isinstance(c, flat) for c in children):
            children = tuple(
                g for c in children for g in (c.children if isinstance(c, flat) else (c,))
            )
        items = [self._item(child) for child in children]
        return _Branch(
            every=every,
            keys=frozenset(i.key for i in items if i.key >= 0),
            regexes=tuple(i.regex for i in items if i.regex >= 0),
            nodes=tuple(i.node for i in items if i.node is not None),
            items=tuple(items),
        )

    def _item(self, node: RuleNode) -> _Item:
        if not isinstance(node, Keyword):
            return _Item(text="", node=self._node(node))
        if node.regex:
            self.regexes.append(compile_regex(node.text))
            return _Item(text="re:" + node.text, regex=len(self.regexes) - 1)
        key = keyword_key(node.text)
        return _Item(text=node.text, key=self._keys.setdefault(key, len(self._keys)))

    def _index_topics(self) -> None:
        """Topics by the keys they need: a topic with a need set is tried only if one is found."""
        always: list[int] = []
        by_key: dict[int, list[int]] = {}
        for index, topic in enumerate(self.topics):
            needed = _needed(topic.tree)
            if needed is None:
                always.append(index)
            for key in needed or ():
                by_key.setdefault(key, []).append(index)
        self._always = tuple(always)
        self._by_key = {k: tuple(v) for k, v in by_key.items()}

    def _build_automaton(self) -> None:
        keys_of: dict[str, list[int]] = {}
        variants = char_variants()
        for key, kid in self._keys.items():
            for form in spellings(key):
                for written in scripts(form, variants):
                    keys_of.setdefault(written, []).append(kid)
        self._patterns = list(keys_of)
        self._pattern_keys = [tuple(v) for v in keys_of.values()]
        self._left = [_is_word(p[0]) for p in self._patterns]
        self._right = [_is_word(p[-1]) for p in self._patterns]
        if self._patterns:
            self._automaton = ahocorasick_rs.AhoCorasick(
                self._patterns, matchkind=ahocorasick_rs.MATCHKIND_STANDARD
            )

    # -- matching ------------------------------------------------------------------------

    def segments(self, entry: Entry) -> tuple[list[str], list[int]]:
        """The texts of the needed fields, each tag its own segment, and their field index."""
        texts: list[str] = []
        fields: list[int] = []
        for f in self.fields:
            values = entry.tags if f == 3 else (getattr(entry, FIELDS[f]),)
            for value in values:
                texts.append(value.replace(_SEP, " ") if _SEP in value else value)
                fields.append(f)
        return texts, fields

    def scan(self, view: _EntryView) -> None:
        """Record in ``view.by_key`` each key found, with the mask of fields it was found in."""
        if self._automaton is None:
            return
        text = view.text
        end = len(text)
        left, right, pkeys = self._left, self._right, self._pattern_keys
        starts = None if self._one_mask else _segment_starts(text)
        by_key, union = view.by_key, self._union
        for pid, s, e in self._automaton.find_matches_as_indexes(text, overlapping=True):
            if left[pid] and s and _is_word(text[s - 1]):
                continue
            if right[pid] and e < end and _is_word(text[e]):
                continue
            bit = union if starts is None else 1 << view.fields[bisect_right(starts, s) - 1]
            for key in pkeys[pid]:
                by_key[key] = by_key.get(key, 0) | bit

    def match(self, entry: Entry, feed: Feed) -> tuple[Hit, ...]:
        """One Hit per matching topic, in rule order, with the keywords that matched."""
        view = _EntryView(self, entry)
        candidates = set(self._always)
        for key in view.by_key:
            candidates.update(self._by_key.get(key, ()))
        hits = []
        for index in sorted(candidates):
            topic = self.topics[index]
            if not topic.in_scope(feed):
                continue
            ctx = _Context(view, topic.mask)
            if topic.tree.test(ctx):
                found: dict[int, str] = {}
                topic.tree.collect(ctx, found)
                hits.append(Hit(topic.id, tuple(found.values())))
        return tuple(hits)


def _segment_starts(text: str) -> list[int]:
    starts = [0]
    pos = text.find(_SEP)
    while pos >= 0:
        starts.append(pos + 1)
        pos = text.find(_SEP, pos + 1)
    return starts


def _needed(node: _Branch | _Not) -> frozenset[int] | None:
    """Keys of which at least one must be found for ``node`` to hold; None if unknown."""
    if isinstance(node, _Not):
        return None
    if node.every:
        if node.keys:
            return frozenset([min(node.keys)])
        return next((n for n in map(_needed, node.nodes) if n is not None), None)
    if node.regexes:
        return None
    needs = [_needed(n) for n in node.nodes]
    if any(n is None for n in needs):
        return None
    return node.keys.union(*[n for n in needs if n is not None])

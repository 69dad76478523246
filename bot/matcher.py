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

How: one Aho-Corasick automaton (a DFA) holds every spelling of every literal keyword of
every topic, in every mix of Simplified and Traditional characters (粤港澳大湾区 is also
粵港澳大灣區 and 粤港澳大灣區), so texts need only NFKC and casefold, not the ~50 us Chinese
conversion; it runs once per entry over the text of all needed fields (joined by NUL, which
no keyword contains). Each topic carries necessary conditions precomputed from its tree
("one of these keys, and one of those": ``_clauses``); a topic is evaluated only when they
hold, so the set operations on the tree run for few entries. Regexes run last, on text
converted to Simplified only then.
"""

from __future__ import annotations

import itertools
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field
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
_MAX_CLAUSES = 8  # necessary conditions kept per topic (the smallest ones)


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
    # Each literal key's first position in ``items``; the positions of the other items.
    key_at: dict[int, int] = field(default_factory=dict, compare=False)
    others: tuple[int, ...] = ()

    def test(self, ctx: _Context) -> bool:
        found = ctx.found
        if self.every:
            if not self.keys <= found:
                return False
            for node in self.nodes:
                if not node.test(ctx):
                    return False
            return all(ctx.regex(rid) for rid in self.regexes)
        if not self.keys.isdisjoint(found):
            return True
        for node in self.nodes:
            if node.test(ctx):
                return True
        return any(ctx.regex(rid) for rid in self.regexes)

    def collect(self, ctx: _Context, out: dict[int, str]) -> None:
        """The keywords of the true branches, first spelling of each key, in rule order."""
        key_at = self.key_at
        order = [(key_at[key], key) for key in self.keys & ctx.found]
        order.extend((position, -1) for position in self.others)
        order.sort()
        items = self.items
        for position, key in order:
            item = items[position]
            if key >= 0:
                out.setdefault(key, item.text)
            elif item.node is not None:
                if item.node.test(ctx):
                    item.node.collect(ctx, out)
            elif ctx.regex(item.regex):
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
    # Key sets of which each must meet the found keys for the tree to hold (see _clauses).
    clauses: tuple[frozenset[int], ...] = ()

    def possible(self, found: dict[int, int]) -> bool:
        """The cheap necessary condition: every clause has a found key."""
        return all(not clause.isdisjoint(found) for clause in self.clauses)

    def in_scope(self, feed: Feed) -> bool:
        if not self.scoped:
            return True
        return (
            feed.url in self.feeds or feed.name in self.feeds or not self.tags.isdisjoint(feed.tags)
        )


class _EntryView:
    """One entry's folded text and the keyword keys found in it, by field."""

    def __init__(self, matcher: Matcher, entry: Entry, *, per_field: bool = False):
        self.matcher = matcher
        self.per_field = per_field
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
        self.rulebook = Rulebook(())
        self.topics: tuple[_Topic, ...] = ()
        self.regexes: list[_Searcher] = []
        self.fields: tuple[int, ...] = ()
        self._keys: dict[str, int] = {}
        self._regex_ids: dict[str, int] = {}
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
        matcher.rulebook = rulebook
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
        clauses = tuple(sorted(set(_clauses(tree)), key=len)[:_MAX_CLAUSES])
        return _Topic(topic.id, mask, tree, tags, feeds, bool(topic.feeds), clauses)

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
        key_at: dict[int, int] = {}
        for position, item in enumerate(items):
            if item.key >= 0:
                key_at.setdefault(item.key, position)
        return _Branch(
            every=every,
            keys=frozenset(key_at),
            regexes=tuple(i.regex for i in items if i.regex >= 0),
            nodes=tuple(i.node for i in items if i.node is not None),
            items=tuple(items),
            key_at=key_at,
            others=tuple(p for p, i in enumerate(items) if i.key < 0),
        )

    def _item(self, node: RuleNode) -> _Item:
        if not isinstance(node, Keyword):
            return _Item(text="", node=self._node(node))
        if node.regex:
            rid = self._regex_ids.get(node.text)
            if rid is None:
                rid = self._regex_ids[node.text] = len(self.regexes)
                self.regexes.append(compile_regex(node.text))
            return _Item(text="re:" + node.text, regex=rid)
        key = keyword_key(node.text)
        return _Item(text=node.text, key=self._keys.setdefault(key, len(self._keys)))

    def _index_topics(self) -> None:
        """Topics by the keys they need: a topic with a need set is tried only if one is found."""
        always: list[int] = []
        by_key: dict[int, list[int]] = {}
        for index, topic in enumerate(self.topics):
            if not topic.clauses:
                always.append(index)
                continue
            for key in topic.clauses[0]:
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
            self._automaton = _automaton(self._patterns)

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
        starts = None if self._one_mask and not view.per_field else _segment_starts(text)
        by_key, union = view.by_key, self._union
        for pid, s, e in self._automaton.find_matches_as_indexes(text, overlapping=True):
            if left[pid] and s and _is_word(text[s - 1]):
                continue
            if right[pid] and e < end and _is_word(text[e]):
                continue
            bit = union if starts is None else 1 << view.fields[bisect_right(starts, s) - 1]
            for key in pkeys[pid]:
                by_key[key] = by_key.get(key, 0) | bit

    def scan_entry(self, entry: Entry) -> EntryScan:
        """Where each keyword occurs in ``entry``, field by field (for explanations)."""
        return EntryScan(_EntryView(self, entry, per_field=True))

    def match(self, entry: Entry, feed: Feed | None) -> tuple[Hit, ...]:
        """One Hit per matching topic, in rule order, with the keywords that matched.

        ``feed=None`` ignores the topics' ``feeds`` scope (``rules test`` on a bare text).
        """
        view = _EntryView(self, entry)
        candidates = set(self._always)
        for key in view.by_key:
            candidates.update(self._by_key.get(key, ()))
        hits = []
        for index in sorted(candidates):
            topic = self.topics[index]
            if not topic.possible(view.by_key):
                continue
            if feed is not None and not topic.in_scope(feed):
                continue
            ctx = _Context(view, topic.mask)
            if topic.tree.test(ctx):
                found: dict[int, str] = {}
                topic.tree.collect(ctx, found)
                hits.append(Hit(topic.id, tuple(found.values())))
        return tuple(hits)


class EntryScan:
    """One entry as the matcher saw it, for explanations: the fields each keyword is in."""

    def __init__(self, view: _EntryView) -> None:
        self._view = view

    @property
    def searched(self) -> tuple[str, ...]:
        """The fields any topic searches; keywords in other fields are not looked for."""
        return tuple(FIELDS[f] for f in self._view.matcher.fields)

    def fields(self, keyword: Keyword) -> tuple[str, ...]:
        """The fields of ``entry`` in which ``keyword`` (literal or ``re:``) occurs."""
        matcher = self._view.matcher
        if keyword.regex:
            rid = matcher._regex_ids.get(keyword.text)
            if rid is None:
                return ()
            return tuple(FIELDS[f] for f in matcher.fields if self._view.search(rid, 1 << f))
        mask = self._view.by_key.get(matcher._keys.get(keyword_key(keyword.text), -1), 0)
        return tuple(FIELDS[f] for f in matcher.fields if mask >> f & 1)


def _segment_starts(text: str) -> list[int]:
    starts = [0]
    pos = text.find(_SEP)
    while pos >= 0:
        starts.append(pos + 1)
        pos = text.find(_SEP, pos + 1)
    return starts


def _automaton(patterns: list[str]) -> ahocorasick_rs.AhoCorasick:
    """A DFA scans ~1.6x faster than the default NFA; very large sets may not fit one."""
    kind = ahocorasick_rs.MATCHKIND_STANDARD
    try:
        return ahocorasick_rs.AhoCorasick(
            patterns, matchkind=kind, implementation=ahocorasick_rs.Implementation.DFA
        )
    except ValueError:  # pragma: no cover - a DFA over that many patterns is too big
        return ahocorasick_rs.AhoCorasick(patterns, matchkind=kind)


def _clauses(node: _Branch | _Not) -> list[frozenset[int]]:
    """Necessary conditions of ``node``: key sets of which each must meet the found keys.

    An ``all`` needs each of its keys and every clause of its children; an ``any`` needs one
    of its keys or one child, so a clause of it is its keys plus one clause of each child
    (only when no child is unknown: a regex or a ``not`` can hold without any key).
    """
    if isinstance(node, _Not):
        return []
    if node.every:
        own = [frozenset([key]) for key in node.keys]
        return own + [c for child in node.nodes for c in _clauses(child)]
    if node.regexes:
        return []
    per_child = [_clauses(child) for child in node.nodes]
    if any(not clauses for clauses in per_child):
        return []
    width = min((len(c) for c in per_child), default=1)
    return [
        node.keys.union(*(clauses[j] for clauses in per_child))
        for j in range(min(width, _MAX_CLAUSES))
    ]

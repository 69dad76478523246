"""Topic YAML -> validated ``Topic`` trees; a ``Rulebook`` is one valid snapshot of rules/.

Pure: texts in, values and ``RuleError``s out. Every problem of every file is reported in one
pass with its real 1-based line (the YAML is composed into nodes, which keep their marks).

A match node is a mapping with any of ``any: [...]``, ``all: [...]``, ``not: node``; several
keys in one mapping must all hold (implicit AND). A list item is a keyword or a node. ``not``
also takes a keyword or a list (meaning ``not: {any: [...]}``); ``match`` itself may be a
list (meaning ``any``). A keyword starting with ``re:`` is a regular expression, compiled
with RE2, which runs in linear time, so no pattern can backtrack catastrophically; patterns
RE2 cannot compile (back-references, look-around) are rejected.

A topic's ``title`` and ``description`` are a string, or a mapping from language (``en``,
``zh-hans``, ``zh-hant``) to string: the chat's language is shown where given (see
``bot.telegram.i18n.topic_title``), else the other Chinese script, else English.

Warnings (the rules still load): a keyword that can never cause a match because a ``not``
beside it excludes it, a keyword repeated in one list, a file without topics.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import re2
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from bot.errors import RuleError
from bot.model import DEFAULT_FIELDS, FIELDS, AllOf, AnyOf, Feed, Keyword, NotOf, Topic
from bot.model import Node as RuleNode
from bot.sources import BOOL_TAG, compose, items, line_of, string_list, text_of, top_list
from bot.sources import unknown_key as _unknown
from bot.text import fold_pattern, match_form

_GAPS = re.compile(r"[ \-]+")
TOPIC_KEYS = ("id", "title", "description", "default", "match", "fields", "feeds")
NODE_KEYS = ("any", "all", "not")
# The languages a title or description may be given in (the chat languages of i18n).
TEXT_LANGUAGES = ("en", "zh-hans", "zh-hant")
_TOPIC_ID = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


def keyword_key(text: str) -> str:
    """The form two keywords share when they match the same text (see ``matcher``): folded,
    with every run of spaces and hyphens inside it one space."""
    return " ".join(_GAPS.split(match_form(text))).strip()


def compile_regex(pattern: str) -> re2._Regexp:
    """The RE2 program for a ``re:`` pattern, case-insensitive; raises re2.error."""
    options = re2.Options()
    options.log_errors = False
    options.case_sensitive = False
    return re2.compile(fold_pattern(pattern), options)


@dataclass(frozen=True, slots=True)
class Rulebook:
    """One valid set of topics and feeds. Replaced as a whole on reload, never mutated."""

    topics: tuple[Topic, ...]
    feeds: tuple[Feed, ...] = ()
    _by_id: dict[str, Topic] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_id", {t.id: t for t in self.topics})

    def topic(self, topic_id: str) -> Topic | None:
        return self._by_id.get(topic_id)

    @property
    def topic_ids(self) -> tuple[str, ...]:
        return tuple(t.id for t in self.topics)

    @property
    def default_topics(self) -> tuple[Topic, ...]:
        return tuple(t for t in self.topics if t.default)


class _TopicParser:
    """Parses one file's topics, appending every problem to ``errors``."""

    def __init__(self, file: str, errors: list[RuleError], feeds: Sequence[Feed] | None):
        self.file = file
        self.errors = errors
        self.tags = None if feeds is None else {t for f in feeds for t in f.tags}
        self.known = None if feeds is None else {f.name for f in feeds} | {f.url for f in feeds}

    def error_count(self) -> int:
        return sum(not e.warning for e in self.errors)

    def error(self, node: Node, message: str, *, warning: bool = False) -> None:
        self.errors.append(RuleError(self.file, line_of(node), message, warning=warning))

    def keyword(self, node: ScalarNode) -> Keyword | None:
        text = str(node.value)
        if text.startswith("re:"):
            return self.regex(node, text[3:])
        if not text.strip():
            self.error(node, "empty keyword")
        elif not keyword_key(text):
            self.error(node, f"keyword {text!r} has no letters or digits")
        else:
            return Keyword(text.strip(), line_of(node))
        return None

    def regex(self, node: ScalarNode, pattern: str) -> Keyword | None:
        if not pattern.strip():
            self.error(node, "empty regular expression after 're:'")
            return None
        try:
            compile_regex(pattern)
        except re2.error as e:
            reason = e.args[0].decode() if e.args and isinstance(e.args[0], bytes) else str(e)
            self.error(
                node,
                f"invalid or unsupported regular expression {pattern!r}: {reason} "
                "(RE2 syntax: no back-references or look-around)",
            )
            return None
        return Keyword(pattern, line_of(node), regex=True)

    def item(self, node: Node) -> RuleNode | None:
        if isinstance(node, ScalarNode) and text_of(node) is not None:
            return self.keyword(node)
        if isinstance(node, MappingNode):
            return self.node(node)
        if isinstance(node, ScalarNode):
            self.error(node, "empty keyword")
        else:
            self.error(node, "a list item must be a keyword or a node (any/all/not)")
        return None

    def children(self, key: str, node: Node) -> tuple[RuleNode, ...] | None:
        if not isinstance(node, SequenceNode):
            self.error(node, f"'{key}' must be a list of keywords or nodes")
            return None
        if not node.value:
            self.error(node, f"empty '{key}' list")
            return None
        parsed = [self.item(child) for child in node.value]
        if any(p is None for p in parsed):
            return None
        self.warn_repeats(key, node.value, parsed)
        return tuple(p for p in parsed if p is not None)

    def warn_repeats(self, key: str, nodes: list[Node], parsed: list[RuleNode | None]) -> None:
        seen: set[tuple[bool, str]] = set()
        for node, item in zip(nodes, parsed, strict=True):
            if isinstance(item, Keyword):
                ident = (item.regex, item.text if item.regex else keyword_key(item.text))
                if ident in seen:
                    self.error(
                        node, f"keyword {item.text!r} repeats in this '{key}' list", warning=True
                    )
                seen.add(ident)

    def negated(self, node: Node) -> RuleNode | None:
        if isinstance(node, SequenceNode):
            kids = self.children("not", node)
            return AnyOf(kids, line_of(node)) if kids else None
        return self.item(node)

    def node(self, node: MappingNode) -> RuleNode | None:
        parts: list[RuleNode] = []
        ok = True
        for key, value, key_node in items(node, self.file, self.errors):
            if key not in NODE_KEYS:
                self.errors.append(_unknown(self.file, key_node, key, NODE_KEYS))
                ok = False
                continue
            part = self.node_part(key, value)
            ok = ok and part is not None
            if part is not None:
                parts.append(part)
        if not node.value:
            self.error(node, "empty node: expected any, all or not")
        if not ok or not parts:
            return None
        return parts[0] if len(parts) == 1 else AllOf(tuple(parts), line_of(node))

    def node_part(self, key: str, value: Node) -> RuleNode | None:
        if key == "not":
            child = self.negated(value)
            return NotOf(child, line_of(value)) if child is not None else None
        kids = self.children(key, value)
        if kids is None:
            return None
        return (AnyOf if key == "any" else AllOf)(kids, line_of(value))

    def match(self, node: Node) -> RuleNode | None:
        if isinstance(node, SequenceNode):
            kids = self.children("match", node)
            return AnyOf(kids, line_of(node)) if kids else None
        return self.item(node)

    def topic(self, node: Node) -> Topic | None:
        if not isinstance(node, MappingNode):
            self.error(node, "a topic must be a mapping with id and match")
            return None
        before = self.error_count()
        values: dict[str, object] = {}
        for key, value, key_node in items(node, self.file, self.errors):
            if key not in TOPIC_KEYS:
                self.errors.append(_unknown(self.file, key_node, key, TOPIC_KEYS))
            else:
                values[key] = self.topic_value(key, value)
        topic_id = values.get("id")
        if "id" not in values:
            self.error(node, "topic has no id")
        if "match" not in values:
            self.error(
                node, f"topic {topic_id!r} has no match" if topic_id else "topic has no match"
            )
        match = values.get("match")
        if self.error_count() > before or not isinstance(topic_id, str) or match is None:
            return None
        return self.build(node, topic_id, values)

    def build(self, node: Node, topic_id: str, values: dict[str, object]) -> Topic:
        fields = values.get("fields")
        feeds = values.get("feeds")
        title, description = values.get("title"), values.get("description")
        return Topic(
            id=topic_id,
            title=_default_text(title) or topic_id,
            match=values["match"],  # type: ignore[arg-type]
            description=_default_text(description),
            titles=_translations(title),
            descriptions=_translations(description),
            default=values.get("default") is True,
            fields=fields if isinstance(fields, tuple) and fields else DEFAULT_FIELDS,
            feeds=feeds if isinstance(feeds, tuple) else (),
            file=self.file,
            line=line_of(node),
        )

    def topic_value(self, key: str, value: Node) -> object:
        if key == "match":
            return self.match(value)
        if key in ("fields", "feeds"):
            return self.names(key, value)
        if key == "default":
            if value.tag != BOOL_TAG:
                self.error(value, "default must be true or false")
                return False
            return str(value.value).lower() in ("true", "yes", "on")
        if key in ("title", "description") and isinstance(value, MappingNode):
            return self.translations(key, value)
        text = text_of(value)
        if text is None or (key == "id" and not text.strip()):
            self.error(value, f"{key} must be a string")
            return None
        if key == "id" and not _TOPIC_ID.fullmatch(text):
            self.error(value, f"topic id {text!r}: use lowercase letters, digits and hyphens")
            return None
        return text.strip()

    def translations(self, key: str, node: MappingNode) -> dict[str, str] | None:
        """``{en: ..., zh-hans: ..., zh-hant: ...}``: at least one, each a non-empty string."""
        texts: dict[str, str] = {}
        before = self.error_count()
        for lang, value, key_node in items(node, self.file, self.errors):
            text = text_of(value)
            if lang not in TEXT_LANGUAGES:
                self.errors.append(_unknown(self.file, key_node, lang, TEXT_LANGUAGES))
            elif text is None or not text.strip():
                self.error(value, f"{key} in {lang} must be a non-empty string")
            else:
                texts[lang] = text.strip()
        if not texts and self.error_count() == before:
            self.error(node, f"{key} gives no text (use en, zh-hans or zh-hant)")
        return texts or None

    def names(self, key: str, value: Node) -> tuple[str, ...]:
        names = string_list(value, self.file, key, self.errors)
        nodes = value.value if isinstance(value, SequenceNode) else [value]
        for node in nodes:
            name = (text_of(node) or "").strip()
            if key == "fields" and name and name not in FIELDS:
                self.error(node, f"unknown field {name!r} (expected {', '.join(FIELDS)})")
            elif key == "feeds" and name:
                self.check_feed(node, name)
        return names

    def check_feed(self, node: Node, name: str) -> None:
        if self.tags is None or self.known is None:
            return
        if name.startswith("tag:"):
            if name[4:] not in self.tags:
                self.error(node, f"unknown feed tag {name[4:]!r}: no feed in feeds.yaml has it")
        elif name not in self.known:
            self.error(node, f"unknown feed {name!r}: not a feed name or url in feeds.yaml")


def _translations(value: object) -> tuple[tuple[str, str], ...]:
    """A title or description given per language, as (language, text) pairs."""
    if isinstance(value, dict):
        return tuple((lang, value[lang]) for lang in TEXT_LANGUAGES if lang in value)
    return ()


def _default_text(value: object) -> str:
    """The text shown where no translation fits: the plain string, else English, else the
    first language given."""
    if isinstance(value, dict):
        return next((value[lang] for lang in TEXT_LANGUAGES if lang in value), "")
    return str(value) if value else ""


def parse_topics(
    text: str, file: str, *, feeds: Sequence[Feed] | None = None
) -> tuple[tuple[Topic, ...], list[RuleError]]:
    """The valid topics of one topic file, and every problem found in it.

    With ``feeds``, each ``feeds:`` scope entry is checked against them too.
    """
    errors: list[RuleError] = []
    nodes = top_list(compose(text, file, errors), "topics", file, errors)
    if not nodes and not errors:
        errors.append(RuleError(file, 1, "no topics in this file", warning=True))
    parser = _TopicParser(file, errors, feeds)
    topics = [parser.topic(node) for node in nodes or []]
    for topic in topics:
        if topic is not None:
            _warn_shadowed(topic, errors)
    return tuple(t for t in topics if t is not None), errors


def _positive_keywords(node: RuleNode) -> list[Keyword]:
    if isinstance(node, Keyword):
        return [node]
    if isinstance(node, NotOf):
        return []
    return [kw for child in node.children for kw in _positive_keywords(child)]


def _excluded(node: RuleNode) -> set[str]:
    """Literal keywords whose presence alone makes ``node`` (a ``not`` child) false."""
    if isinstance(node, NotOf):
        child = node.child
        kids = child.children if isinstance(child, AnyOf) else (child,)
        return {keyword_key(k.text) for k in kids if isinstance(k, Keyword) and not k.regex}
    return set()


def _warn_shadowed(topic: Topic, errors: list[RuleError]) -> None:
    """Warn about keywords that can only appear when a sibling ``not`` already fails."""
    stack: list[RuleNode] = [topic.match]
    while stack:
        node = stack.pop()
        if isinstance(node, NotOf):
            stack.append(node.child)
            continue
        if isinstance(node, Keyword):
            continue
        stack.extend(node.children)
        if not isinstance(node, AllOf):
            continue
        excluded = set().union(*(_excluded(c) for c in node.children))
        for child in node.children:
            for kw in _positive_keywords(child):
                if not kw.regex and keyword_key(kw.text) in excluded:
                    msg = f"keyword {kw.text!r} can never match: a 'not' beside it excludes it"
                    errors.append(RuleError(topic.file, kw.line, msg, warning=True))


def build_rulebook(
    topic_files: Mapping[str, str], feeds: Sequence[Feed]
) -> tuple[Rulebook | None, list[RuleError]]:
    """Every topic file parsed and checked against the feeds and each other.

    Returns the Rulebook (None when any problem is an error, not a warning) and every
    problem, warnings included, sorted by file and line.
    """
    errors: list[RuleError] = []
    topics: list[Topic] = []
    first: dict[str, Topic] = {}
    for file, text in topic_files.items():
        parsed, problems = parse_topics(text, file, feeds=feeds)
        errors.extend(problems)
        for topic in parsed:
            if topic.id in first:
                where = f"{first[topic.id].file}:{first[topic.id].line}"
                msg = f"duplicate topic id {topic.id!r} (first defined at {where})"
                errors.append(RuleError(topic.file, topic.line, msg))
                continue
            first[topic.id] = topic
            topics.append(topic)
    errors.sort()
    if any(not e.warning for e in errors):
        return None, errors
    return Rulebook(tuple(topics), tuple(feeds)), errors

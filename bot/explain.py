"""Why a text matches a topic, or why not: the rule tree evaluated node by node.

``newsbot rules test TEXT`` prints this. Pure: values in, values and text out. The verdict
and the keywords come from the real ``Matcher`` (``Matcher.match``), so the explanation can
never disagree with what the running bot would alert; the tree walk only adds the why: each
``any`` / ``all`` / ``not`` with its line and result, each keyword with the fields it was
found in.

The printed tree is pruned so a pack with hundreds of keywords stays readable: a true
``any`` shows its true items, a false ``all`` its false items, a false ``any`` of plain
keywords one line ("none of 40 keywords found").
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.matcher import EntryScan, Matcher
from bot.model import AllOf, Entry, Feed, Hit, Keyword, NotOf, Topic
from bot.model import Node as RuleNode
from bot.rulebook import Rulebook

YES, NO = "\u2713", "\u2717"  # check mark, ballot x


@dataclass(frozen=True, slots=True)
class NodeResult:
    """One node of a topic's tree with its value. ``kind``: any, all, not, keyword, regex."""

    kind: str
    line: int
    result: bool
    text: str = ""
    fields: tuple[str, ...] = ()
    children: tuple[NodeResult, ...] = ()


@dataclass(frozen=True, slots=True)
class TopicResult:
    """One topic's verdict on the entry. ``in_scope`` is False when ``feeds:`` excludes it."""

    topic: Topic
    matched: bool
    in_scope: bool
    keywords: tuple[str, ...]
    tree: NodeResult


@dataclass(frozen=True, slots=True)
class Explanation:
    entry: Entry
    feed: Feed | None
    searched: tuple[str, ...]
    topics: tuple[TopicResult, ...]

    @property
    def hits(self) -> tuple[Hit, ...]:
        return tuple(Hit(t.topic.id, t.keywords) for t in self.topics if t.matched)


def explain(rules: Matcher | Rulebook, entry: Entry, feed: Feed | None = None) -> Explanation:
    """Every topic evaluated on ``entry``; ``feed=None`` ignores the topics' feed scopes.

    ``rules`` is a compiled matcher (as the running bot holds it) or a rulebook.
    """
    matcher = Matcher.compile(rules) if isinstance(rules, Rulebook) else rules
    rulebook = matcher.rulebook
    hits = {h.topic_id: h for h in matcher.match(entry, feed)}
    scan = matcher.scan_entry(entry)
    results = []
    for topic in rulebook.topics:
        in_scope = feed is None or _in_scope(topic, feed)
        tree = _evaluate(topic.match, scan, topic.fields)
        hit = hits.get(topic.id)
        results.append(
            TopicResult(topic, hit is not None, in_scope, hit.keywords if hit else (), tree)
        )
    return Explanation(entry, feed, scan.searched, tuple(results))


def _in_scope(topic: Topic, feed: Feed) -> bool:
    if not topic.feeds:
        return True
    return any(
        (f[4:] in feed.tags) if f.startswith("tag:") else f in (feed.name, feed.url)
        for f in topic.feeds
    )


def _evaluate(node: RuleNode, scan: EntryScan, fields: tuple[str, ...]) -> NodeResult:
    if isinstance(node, Keyword):
        found = tuple(f for f in scan.fields(node) if f in fields)
        kind = "regex" if node.regex else "keyword"
        text = f"re:{node.text}" if node.regex else node.text
        return NodeResult(kind, node.line, bool(found), text, found)
    if isinstance(node, NotOf):
        child = _evaluate(node.child, scan, fields)
        return NodeResult("not", node.line, not child.result, children=(child,))
    kids = tuple(_evaluate(c, scan, fields) for c in node.children)
    if isinstance(node, AllOf):
        return NodeResult("all", node.line, all(k.result for k in kids), children=kids)
    return NodeResult("any", node.line, any(k.result for k in kids), children=kids)


# -- text -----------------------------------------------------------------------------------


def format_explanation(
    explanation: Explanation, *, topic: str | None = None, every_tree: bool = False
) -> str:
    """The verdict per topic; the pruned tree of each match (of every topic: ``every_tree``).

    ``topic`` limits the output to that topic, tree included, matched or not.
    """
    lines: list[str] = []
    results = [r for r in explanation.topics if topic is None or r.topic.id == topic]
    if topic is not None and not results:
        return f"no topic {topic!r}"
    if topic is None and not any(r.matched for r in results):
        lines.append("no topic matches")
    for result in results:
        tree = result.matched or every_tree or topic is not None
        lines.extend(_topic_lines(result, tree=tree))
    return "\n".join(lines)


def _topic_lines(result: TopicResult, *, tree: bool) -> list[str]:
    topic = result.topic
    where = f"{topic.file}:{topic.line}" if topic.file else f"line {topic.line}"
    if result.matched:
        verdict = f"match: {', '.join(result.keywords)}" if result.keywords else "match"
    elif not result.in_scope:
        verdict = f"not for this feed (feeds: {', '.join(topic.feeds)})"
    else:
        verdict = "no match"
    lines = [f"{YES if result.matched else NO} {topic.id} ({where}): {verdict}"]
    if tree and result.in_scope:
        lines.extend(_node_lines(result.tree, 1))
    return lines


_LONG = 60


def _label(node: NodeResult) -> str:
    mark = YES if node.result else NO
    if node.kind in ("keyword", "regex"):
        text = node.text if len(node.text) <= _LONG else node.text[: _LONG - 3] + "..."
        where = f" in {', '.join(node.fields)}" if node.fields else " not found"
        return f"{mark} {text!r}{where} (line {node.line})"
    return f"{mark} {node.kind} (line {node.line})"


def _node_lines(node: NodeResult, depth: int) -> list[str]:
    pad = "  " * depth
    lines = [pad + _label(node)]
    if node.kind in ("keyword", "regex"):
        return lines
    shown, hidden = _shown(node)
    for child in shown:
        lines.extend(_node_lines(child, depth + 1))
    if hidden:
        lines.append(f"{pad}  {hidden}")
    return lines


def _shown(node: NodeResult) -> tuple[list[NodeResult], str]:
    """The children worth printing and a note about the others."""
    kids = list(node.children)
    if node.kind == "not" and node.result:
        return [], "(nothing it excludes was found)"
    if node.kind == "not" or (node.kind == "all" and node.result):
        return kids, ""
    if node.kind == "any" and not node.result:
        shown = [k for k in kids if k.kind not in ("keyword", "regex")]
        words = len(kids) - len(shown)
        return shown, f"{NO} none of {words} keywords found" if words else ""
    # A true any shows its true items, a false all its false items: the ones that decide.
    shown = [k for k in kids if k.result == node.result]
    rest = len(kids) - len(shown)
    return shown, f"(and {rest} more {'false' if node.result else 'true'})" if rest else ""

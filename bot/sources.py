"""``rules/feeds.yaml`` -> ``Feed`` values, every problem reported as ``FILE:LINE: message``.

Pure: takes the file's text and its name, returns values. The YAML helpers here (composing
nodes with line numbers, duplicate-key checks) are shared with ``rulebook``.

Format::

    feeds:
      - url: https://example.org/rss.xml   # required, http or https
        name: Example News                 # optional; defaults to the url's host
        interval: 5m                       # optional; 90s, 10m, 1h ...
        tags: [hk, regulator]              # optional; topics scope to tag:NAME
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from bot.errors import RuleError, RuleErrors
from bot.model import Feed
from bot.units import parse_duration

STR_TAG = "tag:yaml.org,2002:str"
NULL_TAG = "tag:yaml.org,2002:null"
BOOL_TAG = "tag:yaml.org,2002:bool"
FEED_KEYS = ("url", "name", "interval", "tags")


def line_of(node: Node) -> int:
    """The 1-based line where ``node`` starts."""
    return int(node.start_mark.line) + 1


def compose(text: str, file: str, errors: list[RuleError]) -> Node | None:
    """The YAML node tree of ``text``, or None (with an error) when it is not valid YAML."""
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = int(mark.line) + 1 if mark is not None else 1
        errors.append(RuleError(file, line, f"invalid YAML: {e.problem or e.context}"))
    except yaml.YAMLError as e:
        errors.append(RuleError(file, 1, f"invalid YAML: {e}"))
    return None


def items(
    node: MappingNode, file: str, errors: list[RuleError]
) -> Iterator[tuple[str, Node, Node]]:
    """A mapping's (key, value, key node); reports non-string and duplicate keys, skips them."""
    seen: set[str] = set()
    for key, value in node.value:
        if not isinstance(key, ScalarNode) or key.tag == NULL_TAG:
            errors.append(RuleError(file, line_of(key), "a key must be a plain name"))
            continue
        if key.value in seen:
            errors.append(RuleError(file, line_of(key), f"duplicate key {key.value!r}"))
            continue
        seen.add(key.value)
        yield key.value, value, key


def unknown_key(file: str, node: Node, key: str, allowed: tuple[str, ...]) -> RuleError:
    return RuleError(file, line_of(node), f"unknown key {key!r} (expected {', '.join(allowed)})")


def text_of(node: Node) -> str | None:
    """A scalar's text as written (``2025`` and ``yes`` stay text); None for anything else."""
    if isinstance(node, ScalarNode) and node.tag != NULL_TAG:
        return str(node.value)
    return None


def string_list(node: Node, file: str, what: str, errors: list[RuleError]) -> tuple[str, ...]:
    """A list of non-empty strings; a single string is taken as a list of one."""
    if isinstance(node, ScalarNode) and text_of(node):
        return (str(node.value).strip(),)
    if not isinstance(node, SequenceNode):
        errors.append(RuleError(file, line_of(node), f"{what} must be a list of strings"))
        return ()
    values = []
    for item in node.value:
        text = text_of(item)
        if text is None or not text.strip():
            errors.append(RuleError(file, line_of(item), f"{what} must be a list of strings"))
        else:
            values.append(text.strip())
    return tuple(values)


def top_list(root: Node | None, key: str, file: str, errors: list[RuleError]) -> list[Node] | None:
    """The list under the file's single top-level ``key``; None when the file is empty."""
    if root is None:
        return None
    if not isinstance(root, MappingNode):
        errors.append(RuleError(file, line_of(root), f"expected a mapping with {key!r}"))
        return None
    found: list[Node] | None = None
    for name, value, key_node in items(root, file, errors):
        if name != key:
            errors.append(unknown_key(file, key_node, name, (key,)))
        elif isinstance(value, SequenceNode):
            found = list(value.value)
        elif text_of(value) is None and isinstance(value, ScalarNode):
            found = []
        else:
            errors.append(RuleError(file, line_of(value), f"{key!r} must be a list"))
    return found


def _check_url(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"url must be an http or https URL, got {url!r}"
    return None


def _parse_feed(node: Node, file: str, errors: list[RuleError]) -> Feed | None:
    if not isinstance(node, MappingNode):
        errors.append(RuleError(file, line_of(node), "a feed must be a mapping with a url"))
        return None
    before = len(errors)
    fields: dict[str, object] = {}
    for key, value, key_node in items(node, file, errors):
        line = line_of(value)
        if key not in FEED_KEYS:
            errors.append(unknown_key(file, key_node, key, FEED_KEYS))
        elif key == "tags":
            fields["tags"] = string_list(value, file, "tags", errors)
        elif key == "interval":
            try:
                fields["interval"] = parse_duration(text_of(value) or "")
            except ValueError as e:
                errors.append(RuleError(file, line, f"interval: {e}"))
        elif (text := text_of(value)) is None or not text.strip():
            errors.append(RuleError(file, line, f"{key} must be a non-empty string"))
        else:
            fields[key] = text.strip()
    url = fields.get("url")
    if not isinstance(url, str):
        if "url" not in {k.value for k, _ in node.value if isinstance(k, ScalarNode)}:
            errors.append(RuleError(file, line_of(node), "feed has no url"))
        return None
    if problem := _check_url(url):
        errors.append(RuleError(file, line_of(node), problem))
    if len(errors) > before:
        return None
    tags = fields.get("tags", ())
    interval = fields.get("interval")
    return Feed(
        url=url,
        name=str(fields.get("name") or urlsplit(url).hostname or url),
        tags=tags if isinstance(tags, tuple) else (),
        interval=interval if isinstance(interval, float) else None,
    )


def _check_unique(feeds: list[tuple[int, Feed]], file: str, errors: list[RuleError]) -> None:
    urls: dict[str, int] = {}
    names: dict[str, int] = {}
    for line, feed in feeds:
        if feed.url in urls:
            msg = f"duplicate url {feed.url!r} (first at line {urls[feed.url]})"
            errors.append(RuleError(file, line, msg))
        elif feed.name in names:
            msg = f"duplicate feed name {feed.name!r} (first at line {names[feed.name]})"
            errors.append(RuleError(file, line, msg))
        urls.setdefault(feed.url, line)
        names.setdefault(feed.name, line)


def parse_feeds(text: str, file: str) -> tuple[Feed, ...]:
    """The feeds of a ``feeds.yaml`` text; raises RuleErrors listing every problem."""
    errors: list[RuleError] = []
    nodes = top_list(compose(text, file, errors), "feeds", file, errors)
    if nodes is None and not errors:
        errors.append(RuleError(file, 1, "expected 'feeds:' with a list of feeds"))
    parsed = []
    for node in nodes or []:
        feed = _parse_feed(node, file, errors)
        if feed is not None:
            parsed.append((line_of(node), feed))
    _check_unique(parsed, file, errors)
    if errors:
        raise RuleErrors(errors)
    return tuple(feed for _, feed in parsed)

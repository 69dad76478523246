"""The edge that reads ``rules/``: files in, a checked ``Rulebook`` out.

``feeds.yaml`` holds the feeds; every other ``*.yaml`` / ``*.yml`` file (sorted by name)
holds topics. Parsing and checking are pure (``sources``, ``rulebook``); this module only
reads bytes, decodes them as UTF-8, and reports what it could not read as ``FILE:LINE``.
"""

from __future__ import annotations

from pathlib import Path

from bot.errors import RuleError, RuleErrors
from bot.model import Feed
from bot.rulebook import Rulebook, build_rulebook
from bot.sources import parse_feeds

FEEDS_FILE = "feeds.yaml"


def _read(path: Path, errors: list[RuleError]) -> str | None:
    try:
        data = path.read_bytes()
    except OSError as e:
        errors.append(RuleError(str(path), 0, f"cannot read: {e.strerror or e}"))
        return None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        msg = f"not UTF-8: byte 0x{data[e.start]:02x} at line {line} cannot be decoded"
        errors.append(RuleError(str(path), line, msg))
        return None


def _topic_files(rules_dir: Path) -> list[Path]:
    return sorted(
        p
        for p in rules_dir.iterdir()
        if p.suffix in (".yaml", ".yml") and p.name != FEEDS_FILE and p.is_file()
    )


def _feeds(rules_dir: Path, errors: list[RuleError]) -> tuple[Feed, ...]:
    path = rules_dir / FEEDS_FILE
    if not path.is_file():
        errors.append(RuleError(str(path), 0, "missing: the rules directory needs feeds.yaml"))
        return ()
    text = _read(path, errors)
    if text is None:
        return ()
    try:
        return parse_feeds(text, str(path))
    except RuleErrors as e:
        errors.extend(e.problems)
        return ()


def check_rules(rules_dir: Path) -> tuple[Rulebook | None, list[RuleError]]:
    """The Rulebook in ``rules_dir`` (None if any error) and every error and warning."""
    errors: list[RuleError] = []
    if not rules_dir.is_dir():
        return None, [RuleError(str(rules_dir), 0, "rules directory does not exist")]
    feeds = _feeds(rules_dir, errors)
    texts = {}
    for path in _topic_files(rules_dir):
        text = _read(path, errors)
        if text is not None:
            texts[str(path)] = text
    rulebook, problems = build_rulebook(texts, feeds)
    errors.extend(problems)
    errors.sort()
    if any(not e.warning for e in errors):
        return None, errors
    return rulebook, errors


def load_rules(rules_dir: Path) -> Rulebook:
    """The Rulebook in ``rules_dir``; raises RuleErrors (errors only) when it is not valid."""
    rulebook, problems = check_rules(rules_dir)
    if rulebook is None:
        raise RuleErrors([p for p in problems if not p.warning])
    return rulebook


def rules_signature(rules_dir: Path) -> tuple[tuple[str, int, int], ...]:
    """Names, sizes and modification times of the rule files: a change means reload."""
    try:
        paths = [rules_dir / FEEDS_FILE, *_topic_files(rules_dir)]
    except OSError:
        return ()
    signature = []
    for path in paths:
        try:
            info = path.stat()
        except OSError:
            continue
        signature.append((path.name, info.st_size, info.st_mtime_ns))
    return tuple(signature)

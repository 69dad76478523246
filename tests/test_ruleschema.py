"""``newsbot rules schema``: the JSON Schema agrees with the real checker on good and bad files.

There is no JSON Schema library among the dependencies, so ``valid`` below implements the
draft-07 keywords the schema uses; an unknown keyword fails the test rather than pass silently.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.model import FIELDS
from bot.rulebook import NODE_KEYS, TOPIC_KEYS
from bot.ruleschema import rules_json_schema
from bot.sources import FEED_KEYS

RULES = Path(__file__).resolve().parents[1] / "rules"
SCHEMA = rules_json_schema()
TYPES: dict[str, Any] = {
    "string": str,
    "number": (int, float),
    "array": list,
    "object": dict,
    "boolean": bool,
    "null": type(None),
}
KNOWN = {"$schema", "$id", "title", "description", "definitions", "format"}


def of_type(value: object, name: str) -> bool:
    if isinstance(value, bool) and name == "number":
        return False
    return isinstance(value, TYPES[name])


def valid(value: object, schema: dict[str, Any]) -> bool:
    for key, rule in schema.items():
        if key in KNOWN:
            continue
        if key == "$ref":
            ok = valid(value, SCHEMA["definitions"][rule.rsplit("/", 1)[1]])
        elif key == "type":
            ok = any(of_type(value, t) for t in ([rule] if isinstance(rule, str) else rule))
        elif key == "anyOf":
            ok = any(valid(value, s) for s in rule)
        elif key == "enum":
            ok = value in rule
        elif key in ("pattern", "minLength"):
            ok = not isinstance(value, str) or (
                bool(re.search(rule, value)) if key == "pattern" else len(value) >= rule
            )
        elif key in ("items", "minItems"):
            ok = not isinstance(value, list) or (
                all(valid(v, rule) for v in value) if key == "items" else len(value) >= rule
            )
        elif key in ("properties", "required", "additionalProperties"):
            ok = not isinstance(value, dict) or _object(value, key, rule, schema)
        elif key in ("minProperties", "maxProperties"):
            ok = not isinstance(value, dict) or (
                len(value) >= rule if key == "minProperties" else len(value) <= rule
            )
        else:
            raise AssertionError(f"the test's validator does not know {key!r}")
        if not ok:
            return False
    return True


def _object(value: dict[str, Any], key: str, rule: Any, schema: dict[str, Any]) -> bool:
    if key == "required":
        return all(k in value for k in rule)
    if key == "additionalProperties":
        return rule is not False or set(value) <= set(schema.get("properties", {}))
    return all(valid(v, rule[k]) for k, v in value.items() if k in rule)


def test_is_json_and_names_every_key_the_loader_knows() -> None:
    assert json.loads(json.dumps(SCHEMA)) == SCHEMA
    definitions = SCHEMA["definitions"]
    assert set(definitions["topic"]["properties"]) == set(TOPIC_KEYS)
    assert set(definitions["node"]["properties"]) == set(NODE_KEYS)
    assert set(definitions["feed"]["properties"]) == set(FEED_KEYS)
    assert definitions["topic"]["properties"]["fields"]["anyOf"][0]["enum"] == list(FIELDS)


@pytest.mark.parametrize("path", sorted(RULES.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_rule_files_are_valid(path: Path) -> None:
    assert valid(yaml.safe_load(path.read_text(encoding="utf-8")), SCHEMA)


@pytest.mark.parametrize(
    "text",
    [
        "topics:\n  - id: a\n    match: x\n    colour: red\n",
        "topics:\n  - id: a\n    match:\n      anyy: [x]\n",
        "topics:\n  - id: a\n    match:\n      any: []\n",
        "topics:\n  - id: a\n    match:\n      any: ['  ']\n",
        "topics:\n  - id: a\n    title: A\n",
        "topics:\n  - id: Bad_Id\n    match: x\n",
        "topics:\n  - id: a\n    default: maybe\n    match: x\n",
        "topics:\n  - id: a\n    match: x\n    fields: [body]\n",
        "topics:\n  - id: a\n    match: {}\n",
        "feeds:\n  - name: A\n",
        "feeds:\n  - url: ftp://a.example/x\n",
        "feeds:\n  - url: https://a.example/x\n    interval: soon\n",
        "feed:\n  - url: https://a.example/x\n",
        "topics:\n  - id: a\n    match: x\n    title: {fr: Titre}\n",
        "topics:\n  - id: a\n    match: x\n    title: {}\n",
        "topics:\n  - id: a\n    match: x\n    description: {en: ''}\n",
    ],
)
def test_broken_files_are_invalid(text: str) -> None:
    assert not valid(yaml.safe_load(text), SCHEMA)


def test_forgiving_shorthands_are_valid() -> None:
    text = (
        "topics:\n  - id: a\n    match: [x, y]\n    fields: title\n"
        "  - id: b\n    match: {any: [x], not: [y, z]}\n    feeds: tag:hk\n"
    )
    assert valid(yaml.safe_load(text), SCHEMA)
    assert valid(
        yaml.safe_load("feeds:\n  - url: https://a.example\n    interval: 1h30m\n"), SCHEMA
    )
    translated = "topics:\n  - id: a\n    match: x\n    title: {en: A, zh-hant: 甲}\n"
    assert valid(yaml.safe_load(translated), SCHEMA)

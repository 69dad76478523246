"""A JSON Schema of the rule files, so editors validate and complete them as you type.

``newsbot rules schema > rules/rules.schema.json`` writes it; a rule file then names it on
its first line (the YAML language server in VS Code, vim, Emacs ... reads it)::

    # yaml-language-server: $schema=./rules.schema.json

One schema covers both kinds of file: a topic file (``topics:``) and ``feeds.yaml``
(``feeds:``). It mirrors ``rulebook`` and ``sources`` but cannot say everything they check
(regex syntax, duplicate ids across files, unknown feed tags): ``newsbot rules check`` is
the authority. Pure: returns a dict, built fresh on each call.
"""

from __future__ import annotations

from typing import Any

from bot.model import FIELDS
from bot.rulebook import TEXT_LANGUAGES

SCHEMA_ID = "https://newsbot.invalid/rules.schema.json"
_DURATION = r"^\s*(\d+(\.\d+)?\s*(ms|s|m|h|d|w)\s*)+$"
_TOPIC_ID = r"^[a-z0-9]+(-[a-z0-9]+)*$"


def _one_or_many(item: dict[str, Any]) -> dict[str, Any]:
    """A value or a non-empty list of them (the loader takes a single string as a list)."""
    return {"anyOf": [item, {"type": "array", "items": item, "minItems": 1}]}


def _node() -> dict[str, Any]:
    items = {"type": "array", "items": {"$ref": "#/definitions/item"}, "minItems": 1}
    return {
        "type": "object",
        "description": "any: one item holds; all: every item holds; not: the item fails. "
        "Several keys in one mapping must all hold.",
        "properties": {
            "any": {**items, "description": "at least one of these keywords or nodes"},
            "all": {**items, "description": "every one of these keywords or nodes"},
            "not": {
                "description": "a keyword, a node, or a list (meaning any of them) that "
                "must not match",
                "anyOf": [{"$ref": "#/definitions/item"}, items],
            },
        },
        "additionalProperties": False,
        "minProperties": 1,
    }


def _text() -> dict[str, Any]:
    """A string, or a mapping from chat language to string (``rulebook.TEXT_LANGUAGES``)."""
    per_language = {
        "type": "object",
        "properties": {lang: {"type": "string", "minLength": 1} for lang in TEXT_LANGUAGES},
        "additionalProperties": False,
        "minProperties": 1,
    }
    return {"anyOf": [{"type": "string"}, per_language]}


def _topic() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["id", "match"],
        "properties": {
            "id": {
                "type": "string",
                "pattern": _TOPIC_ID,
                "description": "stable id for /subscribe: lowercase letters, digits, hyphens",
            },
            "title": {**_text(), "description": "shown in /topics; a string or per language"},
            "description": {**_text(), "description": "one line under the title in /topics"},
            "default": {"type": "boolean", "description": "offered first on /start"},
            "match": {
                "description": "a keyword, a node (any/all/not), or a list meaning any",
                "anyOf": [
                    {"$ref": "#/definitions/item"},
                    {"type": "array", "items": {"$ref": "#/definitions/item"}, "minItems": 1},
                ],
            },
            "fields": {
                **_one_or_many({"type": "string", "enum": list(FIELDS)}),
                "description": "fields searched (default: title, summary, content, tags)",
            },
            "feeds": {
                **_one_or_many({"type": "string", "minLength": 1}),
                "description": "only these feeds: tag:NAME, a feed name or a feed url",
            },
        },
        "additionalProperties": False,
    }


def _feed() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["url"],
        "properties": {
            "url": {"type": "string", "pattern": "^https?://[^/\\s]+", "format": "uri"},
            "name": {"type": "string", "minLength": 1, "description": "default: the host"},
            "interval": {
                "anyOf": [{"type": "string", "pattern": _DURATION}, {"type": "number"}],
                "description": "poll interval: 90s, 10m, 1h (default polling.interval)",
            },
            "tags": {
                **_one_or_many({"type": "string", "minLength": 1}),
                "description": "labels a topic can scope to with feeds: [tag:NAME]",
            },
        },
        "additionalProperties": False,
    }


def rules_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft-07, which editors support best) of topic files and feeds.yaml."""
    keyword = {
        "type": ["string", "number"],
        "pattern": "\\S",
        "description": "case-insensitive; Traditional = Simplified Chinese; Latin keywords "
        "match whole words; 're:PATTERN' is an RE2 regular expression",
    }
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "$id": SCHEMA_ID,
        "title": "newsbot rule file (topics or feeds.yaml)",
        "type": "object",
        "properties": {
            "topics": {"type": ["array", "null"], "items": {"$ref": "#/definitions/topic"}},
            "feeds": {"type": ["array", "null"], "items": {"$ref": "#/definitions/feed"}},
        },
        "additionalProperties": False,
        "maxProperties": 1,
        "definitions": {
            "keyword": keyword,
            "node": _node(),
            "item": {"anyOf": [{"$ref": "#/definitions/keyword"}, {"$ref": "#/definitions/node"}]},
            "topic": _topic(),
            "feed": _feed(),
        },
    }

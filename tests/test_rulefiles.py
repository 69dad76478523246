"""Reading rules/: the shipped pack is valid; unreadable files are reported as FILE:LINE."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.errors import RuleErrors
from bot.rulefiles import check_rules, load_rules

SHIPPED = Path(__file__).resolve().parents[1] / "rules"
FEEDS = "feeds:\n  - url: https://a.example/rss\n    name: A\n    tags: [hk]\n"


def write(tmp_path: Path, files: dict[str, str | bytes]) -> Path:
    for name, body in files.items():
        path = tmp_path / name
        if isinstance(body, bytes):
            path.write_bytes(body)
        else:
            path.write_text(body, encoding="utf-8")
    return tmp_path


def test_shipped_rules_have_no_errors_and_no_warnings() -> None:
    rulebook, problems = check_rules(SHIPPED)
    assert [str(p) for p in problems] == []
    assert rulebook is not None
    assert "gba-fintech" in rulebook.topic_ids
    assert [t.id for t in rulebook.default_topics] == ["gba-fintech"]
    assert len(rulebook.feeds) >= 10


def test_reads_every_yaml_and_yml_file_sorted(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "feeds.yaml": FEEDS,
            "b.yml": "topics:\n  - id: b\n    match: x\n    feeds: [tag:hk]\n",
            "a.yaml": "topics:\n  - id: a\n    match: y\n",
            "notes.txt": "not rules",
        },
    )
    rulebook = load_rules(tmp_path)
    assert rulebook.topic_ids == ("a", "b")
    assert rulebook.topic("a").file == str(tmp_path / "a.yaml")  # type: ignore[union-attr]


def test_file_not_utf8_reports_the_line_of_the_first_bad_byte(tmp_path: Path) -> None:
    body = "topics:\n  - id: a\n    match: 金融\n".encode("big5")
    write(tmp_path, {"feeds.yaml": FEEDS, "t.yaml": body})
    rulebook, problems = check_rules(tmp_path)
    assert rulebook is None
    assert [str(p) for p in problems] == [
        f"{tmp_path / 't.yaml'}:3: not UTF-8: byte 0xaa at line 3 cannot be decoded"
    ]


def test_missing_feeds_file(tmp_path: Path) -> None:
    write(tmp_path, {"t.yaml": "topics:\n  - id: a\n    match: x\n"})
    with pytest.raises(RuleErrors) as info:
        load_rules(tmp_path)
    assert str(info.value) == (
        f"{tmp_path / 'feeds.yaml'}:0: missing: the rules directory needs feeds.yaml"
    )


def test_missing_directory(tmp_path: Path) -> None:
    rulebook, problems = check_rules(tmp_path / "nope")
    assert rulebook is None
    assert [str(p) for p in problems] == [f"{tmp_path / 'nope'}:0: rules directory does not exist"]


def test_errors_of_every_file_in_one_pass_warnings_kept_apart(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "feeds.yaml": FEEDS + "  - url: ftp://b.example\n",
            "t.yaml": "topics:\n  - id: a\n    match: x\n    feeds: [tag:macau]\n",
            "u.yaml": "",
        },
    )
    rulebook, problems = check_rules(tmp_path)
    assert rulebook is None
    assert [(str(p), p.warning) for p in problems] == [
        (
            f"{tmp_path / 'feeds.yaml'}:5: url must be an http or https URL, got 'ftp://b.example'",
            False,
        ),
        (f"{tmp_path / 't.yaml'}:4: unknown feed tag 'macau': no feed in feeds.yaml has it", False),
        (f"{tmp_path / 'u.yaml'}:1: no topics in this file", True),
    ]
    with pytest.raises(RuleErrors) as info:
        load_rules(tmp_path)
    assert len(info.value.problems) == 2

"""README's promises that CI relies on: its test command is what .ci/run runs, verbatim, and
every config key it documents is one the loader accepts."""

from __future__ import annotations

import re
from pathlib import Path

from bot.config import load_settings

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")


def command_after(label: str) -> str:
    match = re.search(re.escape(label) + r".*?```sh\n(.+?)\n```", README, re.DOTALL)
    assert match, f"README has no command block after {label!r}"
    return match.group(1).strip()


def test_ci_runs_readme_test_command_verbatim() -> None:
    command = command_after("**Run the tests**")
    ci_lines = (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert command in ci_lines


def test_readme_run_command_installs_and_runs() -> None:
    command = command_after("**Run the bot**")
    assert "pip install" in command and command.endswith("newsbot run")


def test_example_config_is_valid_and_matches_defaults() -> None:
    example = load_settings(REPO / "newsbot.example.toml", {})
    defaults = load_settings(None, {})
    assert example == type(example)(**{**_fields(defaults), "source": example.source})


def _fields(settings: object) -> dict[str, object]:
    return {name: getattr(settings, name) for name in settings.__slots__}  # type: ignore[attr-defined]

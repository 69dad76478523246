"""``newsbot feeds --enable``: an operator brings back a feed that answered 410 Gone."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.cli import main
from bot.model import Feed
from bot.store import Store

GONE = Feed(url="https://gone.example/feed.xml", name="Gone Daily")
FINE = Feed(url="https://fine.example/feed.xml", name="Fine News")


@pytest.fixture
def config(tmp_path: Path) -> Path:
    url = f"sqlite:///{tmp_path}/state.db"

    async def setup() -> None:
        store = await Store.open(url)
        try:
            await store.feeds.sync([GONE, FINE])
            await store.feeds.disable(GONE.url, "disabled: HTTP 410 Gone", now=datetime.now(UTC))
        finally:
            await store.close()

    asyncio.run(setup())
    path = tmp_path / "newsbot.toml"
    path.write_text(f'[storage]\nurl = "{url}"\n', "utf-8")
    return path


def _disabled(config: Path) -> dict[str, str | None]:
    """Each feed's disabled reason, as ``newsbot feeds`` reads it."""

    async def read(url: str) -> dict[str, str | None]:
        store = await Store.open(url)
        try:
            return {h.name: h.disabled for h in await store.feeds.health()}
        finally:
            await store.close()

    return asyncio.run(read(config.read_text("utf-8").split('"')[1]))


def _cli(config: Path, *args: str) -> int:
    return main(["--config", str(config), "feeds", *args], env={})


def test_enable_by_name_fetches_the_feed_again(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _disabled(config)["Gone Daily"] == "disabled: HTTP 410 Gone"
    assert _cli(config, "--enable", "Gone Daily") == 0
    assert _disabled(config) == {"Fine News": None, "Gone Daily": None}
    said = capsys.readouterr().err
    assert "feed Gone Daily enabled again (it was disabled: HTTP 410 Gone)" in said


def test_enable_by_url_and_a_feed_not_disabled_changes_nothing(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _cli(config, "--enable", FINE.url) == 0
    assert "feed Fine News is not disabled: nothing to do" in capsys.readouterr().err
    assert _disabled(config)["Gone Daily"] is not None
    assert _cli(config, "--enable", GONE.url) == 0
    assert _disabled(config)["Gone Daily"] is None


def test_an_unknown_feed_is_a_usage_error(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli(config, "--enable", "No Such Feed") == 2
    assert "no feed named 'No Such Feed'" in capsys.readouterr().err

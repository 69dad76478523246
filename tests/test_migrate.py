"""Opening a database made by an older newsbot."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from builders import candidate, save

from bot.model import Feed
from bot.store import Store


async def _reopened_after(tmp_path: Path, change: str) -> Store:
    """A database made by this newsbot, changed by ``change`` into an older one's shape,
    then opened again (migrations run)."""
    url = f"sqlite:///{tmp_path}/old.db"
    store = await Store.open(url)
    async with store.engine.begin() as conn:
        await conn.exec_driver_sql(change)
    await store.close()
    return await Store.open(url)


async def test_an_older_database_gains_new_columns(tmp_path: Path) -> None:
    store = await _reopened_after(tmp_path, "ALTER TABLE feeds DROP COLUMN ttl")
    try:
        async with store.engine.connect() as conn:
            rows = await conn.exec_driver_sql("SELECT ttl FROM feeds")
            assert rows.all() == []
    finally:
        await store.close()


async def test_an_older_database_with_the_retired_fingerprint_column_still_stores(
    tmp_path: Path,
) -> None:
    """Databases made before the SimHash was retired keep its (nullable) column."""
    store = await _reopened_after(tmp_path, "ALTER TABLE stories ADD COLUMN fingerprint BIGINT")
    now = datetime(2026, 11, 29, tzinfo=UTC)
    try:
        await store.feeds.sync([Feed(url="https://a.example/feed", name="A")])
        title = "HKMA grants the first stablecoin issuer licences in Hong Kong"
        await save(store, "https://a.example/feed", [candidate(title, "https://a/1")], now)
        async with store.engine.connect() as conn:
            rows = await conn.exec_driver_sql("SELECT title, fingerprint FROM stories")
            assert rows.all() == [(title, None)]
    finally:
        await store.close()

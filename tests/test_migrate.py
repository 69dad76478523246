"""Opening a database made by an older newsbot."""

from __future__ import annotations

from pathlib import Path

from bot.store import Store


async def test_an_older_database_gains_new_columns(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/old.db"
    store = await Store.open(url)
    async with store.engine.begin() as conn:
        await conn.exec_driver_sql("ALTER TABLE feeds DROP COLUMN ttl")
    await store.close()
    store = await Store.open(url)
    try:
        async with store.engine.connect() as conn:
            rows = await conn.exec_driver_sql("SELECT ttl FROM feeds")
            assert rows.all() == []
    finally:
        await store.close()

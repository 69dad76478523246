"""``Database.run``: a write transaction as plain code, in SQLite's database thread."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
from sqlalchemy import Connection, func, select, update

from bot.model import Feed
from bot.store import Store
from bot.store.engine import Database
from bot.store.schema import feeds

FEED = Feed(url="https://a.example/feed", name="A")


@pytest.fixture
async def store(tmp_path: Path) -> Store:
    store = await Store.open(f"sqlite:///{tmp_path}/db.sqlite")
    await store.feeds.sync([FEED])
    yield store  # type: ignore[misc]
    await store.close()


def _status(conn: Connection) -> str | None:
    return conn.scalar(select(feeds.c.status).where(feeds.c.url == FEED.url))


async def test_runs_off_the_event_loop_and_commits(store: Store) -> None:
    db = Database(store.engine)
    loop_thread = threading.get_ident()

    def write(conn: Connection) -> int:
        assert threading.get_ident() != loop_thread
        conn.execute(update(feeds).values(status="ok"))
        return int(conn.scalar(select(func.count()).select_from(feeds)) or 0)

    try:
        assert await db.run(write) == 1
        assert await db.run(_status) == "ok"
    finally:
        await db.close()


async def test_an_error_rolls_the_whole_transaction_back(store: Store) -> None:
    db = Database(store.engine)

    def fail(conn: Connection) -> None:
        conn.execute(update(feeds).values(status="half-done"))
        raise KeyError("no such feed")

    try:
        with pytest.raises(KeyError):
            await db.run(fail)
        assert await db.run(_status) == "new"
    finally:
        await db.close()


async def test_a_cancelled_caller_leaves_a_whole_transaction_and_the_lock_held_until_it_ends(
    store: Store,
) -> None:
    db = Database(store.engine)
    started, release = threading.Event(), threading.Event()

    def slow(conn: Connection) -> None:
        conn.execute(update(feeds).values(status="first"))
        started.set()
        release.wait(10)
        conn.execute(update(feeds).values(status="first, whole"))

    try:
        task = asyncio.ensure_future(db.run(slow))
        await asyncio.get_running_loop().run_in_executor(None, started.wait, 10)
        task.cancel()
        await asyncio.sleep(0.05)
        assert not task.done(), "the caller waits for the database thread to finish"
        waiting = asyncio.ensure_future(db.run(_status))
        await asyncio.sleep(0.05)
        assert not waiting.done(), "the next transaction waits for the lock"
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await waiting == "first, whole"
    finally:
        release.set()
        await db.close()


async def test_in_memory_sqlite_runs_on_the_loops_own_connection() -> None:
    store = await Store.open("sqlite:///:memory:")
    db = Database(store.engine)
    try:
        await store.feeds.sync([FEED])
        assert await db.run(_status) == "new"
    finally:
        await db.close()
        await store.close()

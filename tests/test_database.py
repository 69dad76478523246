"""``Database.run``: a write transaction as plain code, in SQLite's database thread."""

from __future__ import annotations

import asyncio
import sqlite3
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
        for _ in range(2):  # however often: the lock is the thread's, not the caller's
            task.cancel()
            await asyncio.sleep(0.02)
        assert task.cancelled()

        async def next_writer() -> str | None:  # through aiosqlite: only the lock stops it
            async with db.write() as conn:
                return await conn.run_sync(_status)

        waiting = asyncio.ensure_future(next_writer())
        await asyncio.sleep(0.05)
        assert not waiting.done(), "the next transaction waits for the thread to finish"
        release.set()
        assert await waiting == "first, whole"
    finally:
        release.set()
        await db.close()


async def test_a_transaction_holds_sqlite_s_write_lock_from_its_first_read(
    store: Store, tmp_path: Path
) -> None:
    """Begun IMMEDIATE: the stdlib driver's own BEGIN would come only before the first
    write, and another writer could commit between the reads and it."""
    db = Database(store.engine)
    reading, release = threading.Event(), threading.Event()

    def reads_first(conn: Connection) -> None:
        _status(conn)
        reading.set()
        release.wait(10)

    other = sqlite3.connect(tmp_path / "db.sqlite", timeout=0, isolation_level=None)
    try:
        task = asyncio.ensure_future(db.run(reads_first))
        await asyncio.get_running_loop().run_in_executor(None, reading.wait, 10)
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")
        release.set()
        await task
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
    finally:
        release.set()
        other.close()
        await db.close()


async def test_run_after_close_is_an_error(store: Store) -> None:
    db = Database(store.engine)
    await db.close()
    with pytest.raises(RuntimeError, match="closed"):
        await db.run(_status)


async def test_in_memory_sqlite_runs_on_the_loops_own_connection() -> None:
    store = await Store.open("sqlite:///:memory:")
    db = Database(store.engine)
    try:
        await store.feeds.sync([FEED])
        assert await db.run(_status) == "new"
    finally:
        await db.close()
        await store.close()

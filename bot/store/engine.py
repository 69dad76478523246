"""Opening the database: URL translation, SQLite pragmas, schema creation."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy
from sqlalchemy import Connection, Engine, event, inspect, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool
from sqlalchemy.sql.dml import Insert

from bot.errors import ConfigError
from bot.store import schema

log = logging.getLogger(__name__)
T = TypeVar("T")
_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}


def async_url(url: str) -> str:
    """``sqlite:///state/newsbot.db`` -> ``sqlite+aiosqlite:///...``; same for PostgreSQL."""
    try:
        parsed = make_url(url)
    except ArgumentError as e:
        raise ConfigError(f"not a database URL: {e}", key="storage.url") from e
    backend = parsed.get_backend_name()
    if backend not in _DRIVERS:
        raise ConfigError(
            f"unsupported database {backend!r}: use sqlite:/// or postgresql://",
            key="storage.url",
        )
    if "+" not in parsed.drivername:
        parsed = parsed.set(drivername=_DRIVERS[backend])
    return parsed.render_as_string(hide_password=False)


class Database:
    """The engine, with two rules added for SQLite.

    - This process's write transactions take turns on an asyncio lock. SQLite has one writer
      at a time; left to its busy handler, sixteen feed cycles waiting for the write lock are
      woken in no order and some starve past the busy timeout ("database is locked").
      Queueing them in the event loop is fair and costs nothing.
    - ``run(fn)`` runs a whole write transaction, written as plain synchronous code, in one
      database thread with the stdlib driver: one hand-off between threads per transaction.
      Through aiosqlite every statement costs four (cursor, execute, fetch, close), ~0.4 ms
      each on a busy machine against ~2 us for SQLite's own work, so a feed cycle of seven
      statements took 7.5 ms, and cycles queue on the write lock: a poll of 200 new feeds
      spent 1.5 s of its 2.6 s there (bench/poll.py).

    PostgreSQL needs neither: ``run(fn)`` is ``AsyncConnection.run_sync`` there (asyncpg
    speaks to the server from the event loop), and so it is for an in-memory SQLite database,
    which a second connection could not see.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._write_lock = asyncio.Lock() if engine.dialect.name == "sqlite" else None
        self._sync_engine: Engine | None = None
        self._thread: ThreadPoolExecutor | None = None
        self._closed = False
        if _is_sqlite_file(engine):
            self._sync_engine = sqlalchemy.create_engine(
                engine.url.set(drivername="sqlite+pysqlite"),
                poolclass=StaticPool,
                connect_args={"check_same_thread": False},  # closed from the event loop
            )
            event.listen(self._sync_engine, "connect", _sqlite_pragmas)
            event.listen(self._sync_engine, "connect", _explicit_transactions)
            event.listen(self._sync_engine, "begin", _begin_immediate)
            self._thread = ThreadPoolExecutor(1, thread_name_prefix="sqlite-writer")

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A connection in a transaction that commits on success, rolls back on error."""
        if self._write_lock is None:
            async with self.engine.begin() as conn:
                yield conn
            return
        async with self._write_lock, self.engine.begin() as conn:
            yield conn

    async def run(self, fn: Callable[[Connection], T]) -> T:
        """``fn(conn)`` in a write transaction that commits when it returns and rolls back
        when it raises. ``fn`` may run in another thread: it must touch nothing the event
        loop uses at the same time. On a SQLite file the transaction begins IMMEDIATE: it
        holds SQLite's write lock from its first statement, reads included.

        If the caller is cancelled while ``fn`` runs in the database thread, the transaction
        still ends as ``fn`` makes it end (committed or rolled back as a whole), and the
        write lock is held until then, however often the caller is cancelled: it is released
        by the thread's end, not by the caller.
        """
        if self._closed:
            raise RuntimeError("the database is closed")
        thread, engine, lock = self._thread, self._sync_engine, self._write_lock
        if thread is None or engine is None or lock is None:
            async with self.write() as conn:
                return await conn.run_sync(fn)
        await lock.acquire()
        try:
            done = asyncio.get_running_loop().run_in_executor(thread, _in_transaction, engine, fn)
        except BaseException:
            lock.release()
            raise
        done.add_done_callback(partial(_settled, lock))
        return await asyncio.shield(done)

    def read(self) -> AsyncConnection:
        return self.engine.connect()

    async def close(self) -> None:
        self._closed = True
        if self._thread is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._thread.shutdown)
            self._thread = None
        if self._sync_engine is not None:
            self._sync_engine.dispose()
            self._sync_engine = None


def _settled(lock: asyncio.Lock, done: asyncio.Future[Any]) -> None:
    """The database thread is done with a transaction: the next one may start. Its outcome
    is read here too, so that a failure whose caller was cancelled (and is no longer there
    to be told) is logged instead of reported as "never retrieved"."""
    lock.release()
    if not done.cancelled() and done.exception() is not None:
        log.debug("a write transaction failed: %r", done.exception())


def _explicit_transactions(dbapi_conn: Any, _record: Any) -> None:
    # The stdlib driver's own BEGIN comes only before the first INSERT/UPDATE/DELETE, so a
    # transaction's first reads would run outside it; ``_begin_immediate`` begins instead.
    dbapi_conn.isolation_level = None


def _begin_immediate(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def _in_transaction(engine: Engine, fn: Callable[[Connection], T]) -> T:
    with engine.begin() as conn:
        return fn(conn)


def _is_sqlite_file(engine: AsyncEngine) -> bool:
    """SQLite in a file, which a second connection (the database thread's) can open."""
    if engine.dialect.name != "sqlite":
        return False
    database = engine.url.database or ""
    in_memory = database in ("", ":memory:") or database.startswith("file::memory:")
    return not in_memory and engine.url.query.get("mode") != "memory"


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def create_engine(url: str) -> AsyncEngine:
    full = async_url(url)
    parsed = make_url(full)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(full, pool_pre_ping=parsed.get_backend_name() != "sqlite")
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


async def migrate(engine: AsyncEngine) -> None:
    """Create the schema on first start; refuse a database from a newer newsbot."""
    try:
        async with engine.begin() as conn:
            await conn.run_sync(schema.metadata.create_all)
            await conn.run_sync(_add_missing_columns)
            version = await _version(conn)
            if version is None:
                await conn.execute(
                    insert_ignore(conn, schema.meta).values(
                        key="schema_version", value=str(schema.SCHEMA_VERSION)
                    )
                )
            elif version > schema.SCHEMA_VERSION:
                raise ConfigError(
                    f"the database has schema version {version}, newer than this newsbot "
                    f"({schema.SCHEMA_VERSION}); upgrade newsbot",
                    key="storage.url",
                )
    except SQLAlchemyError as e:
        raise ConfigError(f"cannot open the database: {e}", key="storage.url") from e


def _add_missing_columns(conn: Connection) -> None:
    """Bring a database made by an older newsbot forward: ``create_all`` creates missing
    tables but never alters existing ones, so each column added since (always nullable) is
    added here with ALTER TABLE, and each index added since is created."""
    inspector = inspect(conn)
    preparer = conn.dialect.identifier_preparer
    for table in schema.metadata.sorted_tables:
        present = {c["name"] for c in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name in present:
                continue
            if not column.nullable:
                raise ConfigError(
                    f"cannot add the required column {table.name}.{column.name} to an existing "
                    "database",
                    key="storage.url",
                )
            kind = column.type.compile(dialect=conn.dialect)
            conn.execute(
                text(
                    f"ALTER TABLE {preparer.quote(table.name)} "
                    f"ADD COLUMN {preparer.quote(column.name)} {kind}"
                )
            )
        for index in table.indexes:
            index.create(conn, checkfirst=True)


async def _version(conn: AsyncConnection) -> int | None:
    value = await conn.scalar(
        select(schema.meta.c.value).where(schema.meta.c.key == "schema_version")
    )
    return int(value) if value is not None else None


def insert_ignore(conn: Connection | AsyncConnection, table: Any) -> Insert:
    """INSERT that skips rows violating a unique constraint, in the connection's dialect."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    return sqlite.insert(table).on_conflict_do_nothing()

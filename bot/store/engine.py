"""Opening the database: URL translation, SQLite pragmas, schema creation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, event, inspect, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.sql.dml import Insert

from bot.errors import ConfigError
from bot.store import schema

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
    """The engine, with one rule added: on SQLite, this process's write transactions take
    turns on an asyncio lock.

    SQLite has one writer at a time; left to its busy handler, sixteen feed cycles waiting for
    the write lock are woken in no order and some starve past the busy timeout ("database is
    locked"). Queueing them in the event loop is fair and costs nothing. PostgreSQL needs no
    such lock.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._write_lock = asyncio.Lock() if engine.dialect.name == "sqlite" else None

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A connection in a transaction that commits on success, rolls back on error."""
        if self._write_lock is None:
            async with self.engine.begin() as conn:
                yield conn
            return
        async with self._write_lock, self.engine.begin() as conn:
            yield conn

    def read(self) -> AsyncConnection:
        return self.engine.connect()


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


def insert_ignore(conn: AsyncConnection, table: Any) -> Insert:
    """INSERT that skips rows violating a unique constraint, in the connection's dialect."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    return sqlite.insert(table).on_conflict_do_nothing()

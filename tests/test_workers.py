"""Parsing in worker processes: a worker that dies costs one feed, not the service."""

from __future__ import annotations

import os
import signal
from concurrent.futures import ThreadPoolExecutor

import pytest
from feedserver import Item, rss

from bot.errors import ParseError
from bot.workers import ParserPool

FEED = rss([Item(title="Hong Kong stablecoin rules", link="https://x.example/1", guid="1")])


def _kill_self() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


async def test_parses_in_a_worker_process() -> None:
    pool = ParserPool(workers=1)
    try:
        parsed = await pool.parse(FEED, "http://127.0.0.1/feed.xml", {})
    finally:
        pool.close()
    assert [e.title for e in parsed.entries] == ["Hong Kong stablecoin rules"]


async def test_a_dead_worker_is_a_parse_error_and_the_pool_recovers() -> None:
    pool = ParserPool(workers=1)
    try:
        executor = pool._executor()
        with pytest.raises(Exception, match="terminated abruptly"):
            executor.submit(_kill_self).result(timeout=60)
        with pytest.raises(ParseError, match="parser process died"):
            await pool.parse(FEED, "http://127.0.0.1/a.xml", {})
        parsed = await pool.parse(FEED, "http://127.0.0.1/b.xml", {})
    finally:
        pool.close()
    assert len(parsed.entries) == 1


async def test_start_brings_every_worker_up_before_the_first_parse() -> None:
    pool = ParserPool(workers=2)
    try:
        await pool.start()
        executor = pool._executor()
        processes = dict(executor._processes)  # type: ignore[attr-defined]
        assert len(processes) == 2 and all(p.is_alive() for p in processes.values())
        parsed = await pool.parse(FEED, "http://127.0.0.1/feed.xml", {})
        assert pool._executor() is executor  # the started pool is the one used
    finally:
        pool.close()
    assert len(parsed.entries) == 1


async def test_start_leaves_a_given_executor_alone() -> None:
    with ThreadPoolExecutor(max_workers=1) as executor:
        pool = ParserPool(executor=executor)
        await pool.start()
        assert pool._pool is None
        parsed = await pool.parse(FEED, "http://127.0.0.1/feed.xml", {})
    assert len(parsed.entries) == 1

"""Parsing off the event loop, in worker processes that may die.

feedparser holds the GIL for 20-150 ms per feed; in a thread that stalls the event loop (and
the chat) 5-16 ms per feed, in a process < 1.5 ms (DESIGN). A worker process can die: the
kernel's OOM killer takes it on a hostile feed, or it crashes. A dead worker breaks a
``ProcessPoolExecutor`` for good, so ``ParserPool`` turns that into a ``ParseError`` for the
feed that was being parsed and starts a fresh pool for the next one.

A worker outlives nothing: if the service itself is killed (SIGKILL, the OOM killer), its
workers notice within ``ORPHAN_CHECK`` seconds that their parent is gone and exit. (They
would otherwise wait forever: each holds both ends of its own task queue, so no EOF comes.)
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Mapping
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from bot.errors import ParseError
from bot.model import ParsedFeed

log = logging.getLogger(__name__)

ORPHAN_CHECK = 1.0  # seconds between a worker's looks at its parent


def _exit_with_parent(parent: int) -> None:
    """Worker initializer: exit when the process that started this worker is gone."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(ORPHAN_CHECK)
        os._exit(0)

    threading.Thread(target=watch, name="orphan-watch", daemon=True).start()


def _parse_job(content: bytes, url: str, headers: dict[str, str]) -> ParsedFeed:
    # Imported here, in the worker: the service's own process never needs feedparser (3 MB).
    from bot.parse import parse_feed

    return parse_feed(content, url=url, headers=headers)


_WARM_UP = (
    b'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title>'
    b"<item><title>t</title><link>https://example.org/</link>"
    b"<description>&lt;p&gt;t&lt;/p&gt;</description></item></channel></rss>"
)


class ParserPool:
    """``await pool.parse(content, url, headers)``; the processes start on first use, or
    ahead of it with ``await pool.start()``.

    ``executor``: use this one instead (tests pass a thread pool); it is not rebuilt.
    """

    def __init__(self, *, workers: int = 2, executor: Executor | None = None) -> None:
        self._workers = workers
        self._given = executor
        self._pool: ProcessPoolExecutor | None = None

    def _executor(self) -> Executor:
        if self._given is not None:
            return self._given
        if self._pool is None:
            # spawn, not fork: forking a process that runs threads (the database's) is unsafe.
            context = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(
                max_workers=self._workers,
                mp_context=context,
                initializer=_exit_with_parent,
                initargs=(os.getpid(),),
            )
        return self._pool

    async def start(self) -> None:
        """Start every worker now and have each parse a tiny feed.

        A spawned worker takes ~0.4 s to start and import feedparser: without this the first
        poll after start-up waited that long for its first parse, with the feeds fetched.
        A failure to start is logged; ``parse`` tries again (and reports it per feed).
        """
        if self._given is not None:
            return
        loop = asyncio.get_running_loop()
        executor = self._executor()
        jobs = [
            loop.run_in_executor(executor, _parse_job, _WARM_UP, "https://example.org/", {})
            for _ in range(self._workers)
        ]
        for outcome in await asyncio.gather(*jobs, return_exceptions=True):
            if isinstance(outcome, BaseException):
                log.error("the parser processes did not start: %r", outcome)
                self._discard(executor)
                return

    async def parse(self, content: bytes, url: str, headers: Mapping[str, str]) -> ParsedFeed:
        loop = asyncio.get_running_loop()
        executor = self._executor()
        try:
            return await loop.run_in_executor(executor, _parse_job, content, url, dict(headers))
        except BrokenProcessPool as e:
            log.error("a parser process died while parsing %s; starting new ones", url)
            self._discard(executor)
            raise ParseError(f"{url}: the parser process died (out of memory?)") from e

    def _discard(self, executor: Executor) -> None:
        if self._pool is executor:
            self._pool = None
            executor.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

"""A local HTTP feed server for tests, on 127.0.0.1 and a free port, with fault helpers.

Two ways to run it:

    async with FeedServer() as server:        # inside the test's event loop
        server.add("/a.xml", rss([...]))
        ... server.url("/a.xml") ...

    with FeedServer() as server:              # own loop in a background thread, so a
        ...                                   # subprocess (newsbot run --once) can use it

Every route answers conditional GETs like a good server (ETag, Last-Modified, 304), unless
told not to. Fault helpers: any status with any headers (Retry-After), redirects (and loops),
a slow drip, a hang, a huge body, a gzip bomb, a delay. ``requests`` records every request.
``rss()`` and ``atom()`` build small documents from items.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip as gzip_module
import hashlib
import threading
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from types import TracebackType
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from aiohttp import web

RSS_TYPE = "application/rss+xml; charset=utf-8"
ATOM_TYPE = "application/atom+xml; charset=utf-8"
_EPOCH = datetime(2024, 1, 1, tzinfo=UTC)


@dataclass
class RequestRecord:
    """One request as the server saw it; ``headers`` has lower-case keys.

    ``connection`` is the client's port: requests sharing it came over one kept-alive
    connection.
    """

    path: str
    headers: dict[str, str]
    status: int = 0
    connection: int = 0

    @property
    def conditional(self) -> bool:
        return "if-none-match" in self.headers or "if-modified-since" in self.headers

    @property
    def not_modified(self) -> bool:
        return self.status == 304


@dataclass
class Route:
    """What one path serves. ``kind`` picks the handler; the rest are its settings."""

    kind: str = "feed"
    body: bytes = b""
    status: int = 200
    content_type: str = RSS_TYPE
    headers: dict[str, str] = field(default_factory=dict)
    etag: bool = True
    last_modified: bool = True
    gzip: bool = False
    version: int = 0
    delay: float = 0.0
    interval: float = 0.0
    size: int = 0
    declare_length: bool = True
    target: str = ""

    @property
    def etag_value(self) -> str:
        return '"' + hashlib.sha256(self.body).hexdigest()[:16] + '"'

    @property
    def last_modified_value(self) -> datetime:
        # A fake clock that moves an hour per change, so a change within one second still
        # gets a newer Last-Modified.
        return _EPOCH + timedelta(hours=self.version)


class FeedServer:
    """Serves feeds and faults on http://127.0.0.1:PORT; see the module docstring."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[RequestRecord] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._release: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ------------------------------------------------------------------------

    async def astart(self) -> FeedServer:
        """Start serving in the running event loop."""
        self._release = asyncio.Event()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def astop(self) -> None:
        """Release hanging handlers and stop serving."""
        if self._release is not None:
            self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FeedServer:
        return await self.astart()

    async def __aexit__(self, *exc: object) -> None:
        await self.astop()

    def start_in_thread(self) -> FeedServer:
        """Start serving from a background thread with its own event loop."""
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="feedserver", daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.astart(), loop).result(timeout=10)
        return self

    def stop(self) -> None:
        """Stop a server started with ``start_in_thread``."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        asyncio.run_coroutine_threadsafe(self.astop(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
        self._loop = self._thread = None

    def __enter__(self) -> FeedServer:
        return self.start_in_thread()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- routes ---------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def add(
        self,
        path: str,
        body: bytes = b"",
        *,
        content_type: str = RSS_TYPE,
        etag: bool = True,
        last_modified: bool = True,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        gzip: bool = False,
        delay: float = 0.0,
    ) -> str:
        """Serve ``body`` at ``path`` (answering conditional GETs); returns the full URL.

        ``status`` other than 200 serves that status (with ``headers``, e.g. Retry-After).
        ``gzip`` compresses for clients that accept it. ``delay`` waits before answering.
        """
        self.routes[path] = Route(
            body=body,
            status=status,
            content_type=content_type,
            headers=dict(headers or {}),
            etag=etag,
            last_modified=last_modified,
            gzip=gzip,
            delay=delay,
        )
        return self.url(path)

    def set(self, path: str, body: bytes) -> None:
        """Change a feed's body: new ETag, newer Last-Modified."""
        route = self.routes[path]
        route.body = body
        route.version += 1

    def add_redirect(self, path: str, target: str, *, status: int = 301) -> str:
        """Redirect ``path`` to ``target`` (a path on this server, or an absolute URL)."""
        self.routes[path] = Route(kind="redirect", status=status, target=target)
        return self.url(path)

    def add_drip(self, path: str, body: bytes, *, interval: float = 0.2) -> str:
        """Send ``body`` one byte every ``interval`` seconds (defeats per-read timeouts)."""
        self.routes[path] = Route(kind="drip", body=body, interval=interval)
        return self.url(path)

    def add_hang(self, path: str) -> str:
        """Accept the request and never answer (until the server stops)."""
        self.routes[path] = Route(kind="hang")
        return self.url(path)

    def add_huge(self, path: str, size: int, *, declare_length: bool = True) -> str:
        """A ``size``-byte body, streamed; with or without a Content-Length header."""
        self.routes[path] = Route(kind="huge", size=size, declare_length=declare_length)
        return self.url(path)

    def add_gzip_bomb(self, path: str, size: int) -> str:
        """A small gzip body that inflates to ``size`` bytes, sent as Content-Encoding: gzip."""
        self.routes[path] = Route(kind="feed", body=_zeros_gzip(size), etag=False)
        self.routes[path].headers["Content-Encoding"] = "gzip"
        return self.url(path)

    def requests_for(self, path: str) -> list[RequestRecord]:
        return [r for r in self.requests if r.path == path]

    # --- handlers -------------------------------------------------------------------------

    @property
    def _stopping(self) -> bool:
        return self._release is not None and self._release.is_set()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        record = RequestRecord(
            request.path,
            {k.lower(): v for k, v in request.headers.items()},
            connection=peer[1] if peer else 0,
        )
        self.requests.append(record)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            response = await self._answer(request, self.routes.get(request.path))
        finally:
            self.in_flight -= 1
        record.status = response.status
        return response

    async def _answer(self, request: web.Request, route: Route | None) -> web.StreamResponse:
        if route is None:
            return web.Response(status=404, text="no such feed")
        if route.delay:
            await asyncio.sleep(route.delay)
        if route.kind == "redirect":
            location = self.url(route.target) if route.target.startswith("/") else route.target
            return web.Response(status=route.status, headers={"Location": location})
        if route.kind == "hang":
            assert self._release is not None
            await self._release.wait()
            return web.Response(status=503, text="server stopping")
        if route.kind == "drip":
            return await self._drip(request, route)
        if route.kind == "huge":
            return await self._huge(request, route)
        return self._feed(request, route)

    def _feed(self, request: web.Request, route: Route) -> web.Response:
        headers = dict(route.headers)
        headers["Content-Type"] = route.content_type
        if route.etag:
            headers["ETag"] = route.etag_value
        if route.last_modified:
            headers["Last-Modified"] = format_datetime(route.last_modified_value, usegmt=True)
        if route.status == 200 and _not_modified(request, route):
            return web.Response(status=304, headers=_validator_headers(headers))
        body = route.body
        if route.gzip and "gzip" in request.headers.get("Accept-Encoding", ""):
            body = gzip_module.compress(body)
            headers["Content-Encoding"] = "gzip"
        return web.Response(status=route.status, body=body, headers=headers)

    async def _drip(self, request: web.Request, route: Route) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": RSS_TYPE})
        response.content_length = len(route.body)
        await response.prepare(request)
        with contextlib.suppress(ConnectionResetError):  # the client gave up: fine
            for i in range(len(route.body)):
                if self._stopping:
                    break
                await response.write(route.body[i : i + 1])
                await asyncio.sleep(route.interval)
            await response.write_eof()
        return response

    async def _huge(self, request: web.Request, route: Route) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": RSS_TYPE})
        if route.declare_length:
            response.content_length = route.size
        else:
            response.enable_chunked_encoding()
        await response.prepare(request)
        chunk = b"<!-- filler -->" * 4369  # 65,535 bytes
        sent = 0
        with contextlib.suppress(ConnectionResetError):  # the client gave up: fine
            while sent < route.size and not self._stopping:
                piece = chunk[: route.size - sent]
                await response.write(piece)
                sent += len(piece)
            await response.write_eof()
        return response


def _not_modified(request: web.Request, route: Route) -> bool:
    """RFC 9110: If-None-Match wins over If-Modified-Since when both are sent."""
    if_none_match = request.headers.get("If-None-Match")
    if if_none_match is not None:
        tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
        return route.etag and ("*" in tags or route.etag_value in tags)
    since = request.headers.get("If-Modified-Since")
    if since is None or not route.last_modified:
        return False
    try:
        when = parsedate_to_datetime(since)
    except (TypeError, ValueError):
        return False
    return when >= route.last_modified_value


def _validator_headers(headers: Mapping[str, str]) -> dict[str, str]:
    kept = ("ETag", "Last-Modified", "Cache-Control", "Expires")  # RFC 9110 15.4.5
    return {k: v for k, v in headers.items() if k in kept}


_BOMBS: dict[int, bytes] = {}


def _zeros_gzip(size: int) -> bytes:
    """Gzip of ``size`` zero bytes, built in pieces (and cached) to keep memory small."""
    if size not in _BOMBS:
        packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        block = bytes(1 << 20)
        parts = [
            packer.compress(block[: min(len(block), size - done)])
            for done in range(0, size, len(block))
        ]
        _BOMBS[size] = b"".join(parts) + packer.flush()
    return _BOMBS[size]


# --- documents ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    """One feed item for ``rss()``/``atom()``; ``published`` must be timezone-aware."""

    title: str
    link: str = ""
    guid: str | None = None
    published: datetime | None = None
    description: str = ""


def _items(items: Iterable[Item | Mapping[str, Any]]) -> list[Item]:
    return [i if isinstance(i, Item) else Item(**i) for i in items]


def rss(
    items: Iterable[Item | Mapping[str, Any]],
    *,
    title: str = "Test feed",
    link: str = "http://127.0.0.1/",
) -> bytes:
    """An RSS 2.0 document (UTF-8) with these items; descriptions are escaped HTML."""
    parts = [
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>',
        f"<title>{escape(title)}</title><link>{escape(link)}</link>",
        "<description>test</description>",
    ]
    for item in _items(items):
        parts.append(f"<item><title>{escape(item.title)}</title>")
        if item.link:
            parts.append(f"<link>{escape(item.link)}</link>")
        if item.guid is not None:
            parts.append(f'<guid isPermaLink="false">{escape(item.guid)}</guid>')
        if item.published is not None:
            parts.append(f"<pubDate>{format_datetime(item.published)}</pubDate>")
        if item.description:
            parts.append(f"<description>{escape(item.description)}</description>")
        parts.append("</item>")
    parts.append("</channel></rss>\n")
    return "\n".join(parts).encode("utf-8")


def atom(
    items: Iterable[Item | Mapping[str, Any]],
    *,
    title: str = "Test feed",
    feed_id: str = "urn:test:feed",
) -> bytes:
    """An Atom 1.0 document (UTF-8); an item without guid gets its link as id."""
    stamp = _EPOCH.isoformat()
    parts = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<feed xmlns="http://www.w3.org/2005/Atom">',
        f"<title>{escape(title)}</title><id>{escape(feed_id)}</id><updated>{stamp}</updated>",
    ]
    for item in _items(items):
        entry_id = item.guid if item.guid is not None else item.link or item.title
        when = (item.published or _EPOCH).isoformat()
        parts.append(f"<entry><id>{escape(entry_id)}</id><title>{escape(item.title)}</title>")
        if item.link:
            parts.append(f"<link rel={quoteattr('alternate')} href={quoteattr(item.link)}/>")
        parts.append(f"<updated>{when}</updated>")
        if item.published is not None:
            parts.append(f"<published>{when}</published>")
        if item.description:
            parts.append(f'<summary type="html">{escape(item.description)}</summary>')
        parts.append("</entry>")
    parts.append("</feed>\n")
    return "\n".join(parts).encode("utf-8")

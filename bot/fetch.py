"""HTTP GET of feeds. The only module that imports httpx.

``Fetcher.get(url, state)`` makes one conditional GET and returns a ``FetchResult``, or raises
``FetchError`` naming the url and the cause; no httpx exception escapes. What it guards
against, and why:

- **Unchanged feeds cost one round trip**: ``If-None-Match`` / ``If-Modified-Since`` from the
  stored validators; a 304 returns ``FetchResult(status=304)`` with no body.
- **Slow servers**: httpx's ``timeout`` applies per read, so a server dripping a byte a second
  never times out. An outer deadline (default 3 x timeout) bounds the whole exchange,
  redirects included. Waiting for a free slot does not count against it.
- **Huge bodies and compression bombs**: we advertise only ``gzip, deflate``, read the raw
  stream and decompress it ourselves with zlib ``max_length``, so the decompressed size stops
  at ``max_bytes`` + 1 and never beyond (capping httpx's decoded stream let a gzip bomb run
  67 MB past a 10 MB cap: its decoder inflates a whole network chunk at once).
- **Redirects** are followed by hand, at most ``MAX_REDIRECTS``, without reading their bodies;
  a loop is an error. When the chain starts with permanent hops (301/308), the URL they lead
  to is reported as ``permanent_redirect`` so the caller can update the feed's URL.
- **Politeness**: at most ``concurrency`` fetches at once, one at a time per host, and the
  caller's identifying User-Agent. A fetch takes its host's turn before a global slot, so
  feeds queued behind one slow host do not hold slots that other hosts could use. Between
  the two, the caller's ``admit`` may make it wait (for room to hold one more body).

``Retry-After`` (seconds or an HTTP date) on 429/503 becomes ``FetchError.retry_after`` in
seconds; bounding it is ``decide.py``'s job, not this module's.
"""

from __future__ import annotations

import asyncio
import contextlib
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import TracebackType

import anyio.lowlevel
import httpx

from bot.errors import FetchError
from bot.model import FeedState, FetchResult

__all__ = ["MAX_REDIRECTS", "Fetcher", "parse_retry_after"]

MAX_REDIRECTS = 5
_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json;q=0.5, "
    "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.8"
)
_PERMANENT = frozenset({301, 308})
_RETRY_AFTER_STATUSES = frozenset({429, 503})
_GZIP = 16 + zlib.MAX_WBITS
_DRAIN_LIMIT = 64 * 1024
_HTTPX_ERRORS = (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError)


class Fetcher:
    """Conditional GETs with a deadline, a decompressed-size cap and per-host politeness."""

    def __init__(
        self,
        *,
        timeout: float,
        max_bytes: int,
        user_agent: str,
        concurrency: int = 16,
        deadline: float | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.max_bytes = max_bytes
        self.deadline = deadline if deadline is not None else 3 * timeout
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,
            transport=transport,
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
            headers={
                "User-Agent": user_agent,
                "Accept": _ACCEPT,
                "Accept-Encoding": "gzip, deflate",
            },
        )
        self._slots = asyncio.Semaphore(concurrency)
        self._hosts = _HostLocks()

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def start(self) -> None:
        """Load what the first request would load (anyio's asyncio backend: the first
        fetch stalled the event loop for 16 ms, 8 ms with it loaded beforehand)."""
        await anyio.lowlevel.checkpoint()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def get(
        self, url: str, state: FeedState, *, admit: Callable[[], Awaitable[None]] | None = None
    ) -> FetchResult:
        """Fetch ``url``; 304 when ``state``'s validators still hold. Raises ``FetchError``.

        ``admit``: awaited once this fetch has its host's turn, before it takes a global
        slot: the caller's chance to wait for room for one more body.
        """
        host = _host(url)
        async with self._hosts.hold(host):
            if admit is not None:
                await admit()
            async with self._slots:
                return await self._get_in_time(url, state)

    async def _get_in_time(self, url: str, state: FeedState) -> FetchResult:
        try:
            async with asyncio.timeout(self.deadline):
                return await self._get(url, state)
        except TimeoutError as e:
            raise FetchError(
                f"{url}: no complete response within the {self.deadline:g} s deadline"
            ) from e
        except _HTTPX_ERRORS as e:
            raise FetchError(f"{url}: {_describe(e)}") from e

    async def _get(self, url: str, state: FeedState) -> FetchResult:
        request = self._client.build_request("GET", url, headers=_validators(state))
        seen = {str(request.url)}
        permanent: str | None = None
        permanent_chain = True
        for _ in range(MAX_REDIRECTS + 1):
            response = await self._client.send(request, stream=True)
            try:
                if response.next_request is None:
                    return await self._result(url, response, state, permanent)
                await _drain(response)
                next_url = str(response.next_request.url)
                permanent_chain = permanent_chain and response.status_code in _PERMANENT
                permanent = next_url if permanent_chain else permanent
            finally:
                await response.aclose()
            if next_url in seen:
                raise FetchError(f"{url}: redirect loop at {next_url}")
            seen.add(next_url)
            request = response.next_request
        raise FetchError(f"{url}: more than {MAX_REDIRECTS} redirects")

    async def _result(
        self, url: str, response: httpx.Response, state: FeedState, permanent: str | None
    ) -> FetchResult:
        status = response.status_code
        if not (200 <= status < 300 or status == 304):
            await _drain(response)
            raise _status_error(url, response)
        if status == 304:
            await _drain(response)
        content = b"" if status == 304 else await self._read(url, response)
        headers = {key.lower(): value for key, value in response.headers.items()}
        return FetchResult(
            url=str(response.url),
            status=status,
            content=content,
            headers=headers,
            etag=headers.get("etag", state.etag if status == 304 else None),
            last_modified=headers.get(
                "last-modified", state.last_modified if status == 304 else None
            ),
            permanent_redirect=permanent,
        )

    async def _read(self, url: str, response: httpx.Response) -> bytes:
        """The decompressed body, or FetchError as soon as it passes ``max_bytes``."""
        if response.is_stream_consumed:
            # A transport handed us a body it had already read (httpx.MockTransport with
            # ``content=``): it is in memory anyway, so only the cap is left to apply.
            if len(response.content) > self.max_bytes:
                raise self._too_big(url, "body")
            return response.content
        encoding = response.headers.get("content-encoding", "identity").strip().lower()
        decoder = _decoder(url, encoding)
        declared = response.headers.get("content-length", "")
        if encoding == "identity" and declared.isdigit() and int(declared) > self.max_bytes:
            raise self._too_big(url, f"Content-Length is {int(declared)} bytes")
        body = bytearray()
        try:
            async for chunk in response.aiter_raw():
                body += decoder.feed(chunk, self.max_bytes + 1 - len(body))
                if len(body) > self.max_bytes:
                    raise self._too_big(url, "body")
            body += decoder.finish(url)
        except zlib.error as e:
            raise FetchError(f"{url}: invalid {encoding} body ({e})") from e
        if len(body) > self.max_bytes:
            raise self._too_big(url, "body")
        return bytes(body)

    def _too_big(self, url: str, what: str) -> FetchError:
        return FetchError(f"{url}: {what} exceeds the {self.max_bytes}-byte limit")


class _HostLocks:
    """One lock per host, dropped when nobody holds or waits for it (no unbounded growth)."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, host: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(host, (asyncio.Lock(), 0))
        self._locks[host] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[host]
            if users == 1:
                del self._locks[host]
            else:
                self._locks[host] = (lock, users - 1)


class _Decoder:
    """Incremental gzip/deflate/identity decoding that never outputs more than asked for."""

    def __init__(self, wbits: int | None) -> None:
        self._wbits = wbits
        self._zlib = zlib.decompressobj(wbits) if wbits is not None else None
        self._raw_deflate_tried = False

    def feed(self, data: bytes, room: int) -> bytes:
        """At most ``room`` decoded bytes from ``data``; more input left means over the cap."""
        room = max(room, 1)  # zlib reads max_length=0 as "no limit"
        if self._zlib is None:
            return data[:room] if len(data) > room else data
        try:
            out = self._zlib.decompress(data, room)
        except zlib.error:
            if self._wbits != zlib.MAX_WBITS or self._raw_deflate_tried:
                raise
            # "deflate" is meant to be zlib-wrapped; some servers send raw deflate instead.
            self._raw_deflate_tried = True
            self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)
            out = self._zlib.decompress(data, room)
        tail = self._zlib.unused_data
        if self._wbits == _GZIP and self._zlib.eof and tail.startswith(b"\x1f\x8b"):
            # Concatenated gzip members are one valid body; other trailing bytes are ignored.
            self._zlib = zlib.decompressobj(_GZIP)
            out += self.feed(tail, room - len(out)) if len(out) < room else b""
        return out

    def finish(self, url: str) -> bytes:
        if self._zlib is None:
            return b""
        if not self._zlib.eof:
            raise FetchError(f"{url}: compressed body ends early")
        return self._zlib.flush()


async def _drain(response: httpx.Response) -> None:
    """Read a body we do not want, if it is small, so the connection can be reused.

    An unread response makes httpcore close its connection: every 304 would cost a new TCP
    (and TLS) handshake on the next poll of that host.
    """
    if response.is_stream_consumed:
        return
    seen = 0
    async for chunk in response.aiter_raw():
        seen += len(chunk)
        if seen > _DRAIN_LIMIT:
            return  # not worth it: closing drops the connection instead


def _decoder(url: str, encoding: str) -> _Decoder:
    if encoding in ("", "identity"):
        return _Decoder(None)
    if encoding in ("gzip", "x-gzip"):
        return _Decoder(_GZIP)
    if encoding == "deflate":
        return _Decoder(zlib.MAX_WBITS)
    raise FetchError(f"{url}: unsupported Content-Encoding {encoding!r}")


def _validators(state: FeedState) -> dict[str, str]:
    headers = {}
    if state.etag:
        headers["If-None-Match"] = state.etag
    if state.last_modified:
        headers["If-Modified-Since"] = state.last_modified
    return headers


def _host(url: str) -> str:
    try:
        return httpx.URL(url).host.lower()
    except httpx.InvalidURL as e:
        raise FetchError(f"{url}: invalid URL ({e})") from e


def _status_error(url: str, response: httpx.Response) -> FetchError:
    status = response.status_code
    retry_after = None
    if status in _RETRY_AFTER_STATUSES:
        retry_after = parse_retry_after(response.headers.get("retry-after"), datetime.now(UTC))
    where = "" if str(response.url) == url else f" (at {response.url})"
    wait = f", retry after {retry_after:g} s" if retry_after is not None else ""
    return FetchError(
        f"{url}: HTTP {status} {response.reason_phrase}{where}{wait}".rstrip(),
        status=status,
        retry_after=retry_after,
    )


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def _describe(error: Exception) -> str:
    kinds = {
        httpx.ConnectTimeout: "connect timeout",
        httpx.ReadTimeout: "read timeout",
        httpx.WriteTimeout: "write timeout",
        httpx.PoolTimeout: "no free connection",
        httpx.ConnectError: "cannot connect",
        httpx.RemoteProtocolError: "protocol error",
        httpx.UnsupportedProtocol: "unsupported URL scheme",
        httpx.InvalidURL: "invalid URL",
        httpx.DecodingError: "cannot decode body",
    }
    kind = next((name for cls, name in kinds.items() if isinstance(error, cls)), None)
    detail = str(error)
    kind = kind or type(error).__name__
    return f"{kind}: {detail}" if detail else kind

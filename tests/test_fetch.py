"""fetch.py against the local feed server (real httpx), and MockTransport for odd cases."""

from __future__ import annotations

import asyncio
import gzip
import socket
import tracemalloc
import zlib
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from feedserver import FeedServer, Item, atom, rss

from bot.errors import FetchError
from bot.fetch import MAX_REDIRECTS, Fetcher, parse_retry_after
from bot.model import FeedState

UA = "newsbot-test/0.1 (+https://example.org/newsbot)"
BODY = rss([Item("Fintech in the GBA", "https://example.org/1", guid="1")], title="T")


@pytest.fixture
async def server() -> AsyncIterator[FeedServer]:
    async with FeedServer() as feed_server:
        yield feed_server


@pytest.fixture
async def fetcher() -> AsyncIterator[Fetcher]:
    async with Fetcher(timeout=5, max_bytes=1_000_000, user_agent=UA) as client:
        yield client


# --- conditional GET ----------------------------------------------------------------------


async def test_etag_gives_304_then_200_after_a_change(server: FeedServer, fetcher: Fetcher):
    url = server.add("/a.xml", BODY, last_modified=False)
    first = await fetcher.get(url, FeedState())
    assert (first.status, first.content, first.not_modified) == (200, BODY, False)
    assert first.etag and first.last_modified is None

    second = await fetcher.get(url, FeedState(etag=first.etag))
    assert (second.status, second.content, second.not_modified) == (304, b"", True)
    assert second.etag == first.etag

    server.set("/a.xml", BODY + b"\n")
    third = await fetcher.get(url, FeedState(etag=first.etag))
    assert (third.status, third.content) == (200, BODY + b"\n")
    assert third.etag != first.etag
    records = server.requests_for("/a.xml")
    assert [(r.conditional, r.not_modified) for r in records] == [
        (False, False),
        (True, True),
        (True, False),
    ]


async def test_304_errors_and_redirects_keep_the_connection(server: FeedServer, fetcher: Fetcher):
    """Unwanted small bodies are read, so unchanged polls reuse one kept-alive connection."""
    url = server.add("/k.xml", BODY)
    server.add("/err.xml", b"x" * 1000, status=500)
    server.add_redirect("/moved.xml", "/k.xml", status=302)
    first = await fetcher.get(url, FeedState())
    for _ in range(3):
        assert (await fetcher.get(url, FeedState(etag=first.etag))).status == 304
        with pytest.raises(FetchError):
            await fetcher.get(server.url("/err.xml"), FeedState())
        await fetcher.get(server.url("/moved.xml"), FeedState(etag=first.etag))
    assert len({r.connection for r in server.requests}) == 1


async def test_last_modified_gives_304(server: FeedServer, fetcher: Fetcher):
    url = server.add("/b.xml", BODY, etag=False)
    first = await fetcher.get(url, FeedState())
    assert first.etag is None and first.last_modified
    second = await fetcher.get(url, FeedState(last_modified=first.last_modified))
    assert second.status == 304
    assert second.last_modified == first.last_modified
    assert server.requests_for("/b.xml")[1].headers["if-modified-since"] == first.last_modified


async def test_without_validators_every_fetch_is_a_full_200(server: FeedServer, fetcher: Fetcher):
    url = server.add("/c.xml", BODY, etag=False, last_modified=False)
    first = await fetcher.get(url, FeedState())
    again = await fetcher.get(url, FeedState(etag=first.etag, last_modified=first.last_modified))
    assert (again.status, again.content) == (200, BODY)


async def test_request_headers_and_result_headers(server: FeedServer, fetcher: Fetcher):
    url = server.add("/h.xml", atom([Item("x", "https://e.org/x")]), headers={"X-Custom": "1"})
    result = await fetcher.get(url, FeedState())
    sent = server.requests_for("/h.xml")[0].headers
    assert sent["user-agent"] == UA
    assert sent["accept-encoding"] == "gzip, deflate"
    assert result.headers["x-custom"] == "1"
    assert result.headers["content-type"].startswith("application/rss+xml")
    assert all(key == key.lower() for key in result.headers)
    assert result.url == url


async def test_gzip_body_is_decompressed(server: FeedServer, fetcher: Fetcher):
    body = rss([Item(f"item {n}", f"https://e.org/{n}") for n in range(200)])
    url = server.add("/z.xml", body, gzip=True)
    result = await fetcher.get(url, FeedState())
    assert result.content == body
    assert result.headers["content-encoding"] == "gzip"


@pytest.mark.parametrize("wbits", [zlib.MAX_WBITS, -zlib.MAX_WBITS], ids=["zlib", "raw"])
async def test_deflate_both_flavours(wbits: int):
    packer = zlib.compressobj(6, zlib.DEFLATED, wbits)
    packed = packer.compress(BODY) + packer.flush()

    def handler(request: httpx.Request) -> httpx.Response:
        stream = httpx.ByteStream(packed)
        return httpx.Response(200, stream=stream, headers={"Content-Encoding": "deflate"})

    async with Fetcher(
        timeout=5, max_bytes=10_000, user_agent=UA, transport=httpx.MockTransport(handler)
    ) as fetcher:
        assert (await fetcher.get("http://feeds.test/d", FeedState())).content == BODY


async def test_concatenated_gzip_members_are_one_body():
    packed = gzip.compress(BODY[:100]) + gzip.compress(BODY[100:])

    def handler(request: httpx.Request) -> httpx.Response:
        stream = httpx.ByteStream(packed)
        return httpx.Response(200, stream=stream, headers={"Content-Encoding": "gzip"})

    async with Fetcher(
        timeout=5, max_bytes=10_000, user_agent=UA, transport=httpx.MockTransport(handler)
    ) as fetcher:
        assert (await fetcher.get("http://feeds.test/g", FeedState())).content == BODY


@pytest.mark.parametrize(
    ("headers", "content", "message"),
    [
        ({"Content-Encoding": "br"}, b"\x00" * 10, "unsupported Content-Encoding 'br'"),
        ({"Content-Encoding": "gzip"}, gzip.compress(BODY)[:-20], "compressed body ends early"),
        ({"Content-Encoding": "gzip"}, b"not gzip at all", "invalid gzip body"),
    ],
    ids=["brotli", "truncated-gzip", "garbage-gzip"],
)
async def test_bad_encodings_are_fetch_errors(
    headers: dict[str, str], content: bytes, message: str
):
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=httpx.ByteStream(content), headers=headers)

    async with Fetcher(
        timeout=5, max_bytes=10_000, user_agent=UA, transport=httpx.MockTransport(handler)
    ) as fetcher:
        with pytest.raises(FetchError, match=message):
            await fetcher.get("http://feeds.test/e", FeedState())


async def test_a_pre_read_mock_response_still_works():
    """httpx.MockTransport with ``content=`` hands over a body httpx has already read."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=BODY, headers={"ETag": '"v1"'})

    async with Fetcher(
        timeout=5, max_bytes=len(BODY), user_agent=UA, transport=httpx.MockTransport(handler)
    ) as fetcher:
        result = await fetcher.get("http://feeds.test/m", FeedState())
        assert (result.content, result.etag) == (BODY, '"v1"')
        fetcher.max_bytes = len(BODY) - 1
        with pytest.raises(FetchError, match="exceeds"):
            await fetcher.get("http://feeds.test/m", FeedState())


# --- statuses -------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [404, 410, 500, 502, 401])
async def test_http_error_statuses(server: FeedServer, fetcher: Fetcher, status: int):
    url = server.add("/s.xml", b"nope", status=status)
    with pytest.raises(FetchError) as caught:
        await fetcher.get(url, FeedState())
    assert caught.value.status == status
    assert caught.value.retry_after is None
    assert url in str(caught.value) and str(status) in str(caught.value)


@pytest.mark.parametrize("status", [429, 503])
async def test_retry_after_seconds(server: FeedServer, fetcher: Fetcher, status: int):
    url = server.add("/r.xml", status=status, headers={"Retry-After": "120"})
    with pytest.raises(FetchError) as caught:
        await fetcher.get(url, FeedState())
    assert (caught.value.status, caught.value.retry_after) == (status, 120.0)
    assert "retry after 120 s" in str(caught.value)


async def test_retry_after_http_date(server: FeedServer, fetcher: Fetcher):
    url = server.add("/r.xml", status=503, headers={"Retry-After": "Wed, 21 Oct 2099 07:28:00 GMT"})
    with pytest.raises(FetchError) as caught:
        await fetcher.get(url, FeedState())
    assert caught.value.retry_after is not None and caught.value.retry_after > 365 * 86400


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0", 0.0),
        (" 30 ", 30.0),
        ("Thu, 01 Jan 2026 00:02:00 GMT", 120.0),
        ("Wed, 31 Dec 2025 23:00:00 GMT", 0.0),
        ("soon", None),
        ("-5", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None):
    assert parse_retry_after(value, datetime(2026, 1, 1, tzinfo=UTC)) == expected


# --- slow, hanging, refused -----------------------------------------------------------------


async def test_slow_drip_hits_the_outer_deadline(server: FeedServer):
    url = server.add_drip("/drip.xml", BODY, interval=0.05)
    # Each byte arrives well within the 2 s read timeout; only the deadline can stop this.
    async with Fetcher(timeout=2, deadline=0.5, max_bytes=10_000, user_agent=UA) as fetcher:
        with pytest.raises(FetchError, match=r"deadline") as caught:
            await fetcher.get(url, FeedState())
    assert url in str(caught.value)


async def test_default_deadline_is_three_timeouts():
    async with Fetcher(timeout=2, max_bytes=1, user_agent=UA) as fetcher:
        assert fetcher.deadline == 6


async def test_hanging_server_times_out(server: FeedServer):
    url = server.add_hang("/hang.xml")
    async with Fetcher(timeout=0.3, max_bytes=10_000, user_agent=UA) as fetcher:
        with pytest.raises(FetchError, match=r"read timeout"):
            await fetcher.get(url, FeedState())


async def test_connection_refused(fetcher: Fetcher):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(FetchError, match="cannot connect") as caught:
        await fetcher.get(f"http://127.0.0.1:{port}/gone.xml", FeedState())
    assert isinstance(caught.value.__cause__, httpx.ConnectError)


@pytest.mark.parametrize("url", ["ftp://example.org/feed", "not a url", "http://[::1/"])
async def test_bad_urls(fetcher: Fetcher, url: str):
    with pytest.raises(FetchError, match="URL"):
        await fetcher.get(url, FeedState())


async def test_transport_errors_never_escape():
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.RemoteProtocolError("peer closed connection", request=request)

    async with Fetcher(
        timeout=5, max_bytes=10, user_agent=UA, transport=httpx.MockTransport(handler)
    ) as fetcher:
        with pytest.raises(FetchError, match="protocol error: peer closed") as caught:
            await fetcher.get("http://feeds.test/x", FeedState())
    assert isinstance(caught.value.__cause__, httpx.RemoteProtocolError)


# --- size caps ------------------------------------------------------------------------------


async def test_gzip_bomb_stops_at_the_cap(server: FeedServer):
    url = server.add_gzip_bomb("/bomb.xml", 200_000_000)
    cap = 1_000_000
    async with Fetcher(timeout=10, max_bytes=cap, user_agent=UA) as fetcher:
        tracemalloc.start()
        try:
            with pytest.raises(FetchError, match=r"exceeds the 1000000-byte limit"):
                await fetcher.get(url, FeedState())
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    # One network chunk of this bomb inflates to far more than the cap; we never hold it.
    assert peak < 8 * cap


async def test_gzip_just_under_the_cap_is_fine(server: FeedServer):
    body = b"<rss>" + b" " * 9_990 + b"</rss>"
    url = server.add("/fits.xml", body, gzip=True)
    async with Fetcher(timeout=5, max_bytes=len(body), user_agent=UA) as fetcher:
        assert (await fetcher.get(url, FeedState())).content == body
    async with Fetcher(timeout=5, max_bytes=len(body) - 1, user_agent=UA) as fetcher:
        with pytest.raises(FetchError, match="exceeds"):
            await fetcher.get(url, FeedState())


@pytest.mark.parametrize(
    ("declare_length", "message"),
    [(True, "Content-Length is 5000000 bytes exceeds"), (False, "body exceeds")],
)
async def test_body_over_max_bytes(server: FeedServer, declare_length: bool, message: str):
    url = server.add_huge("/huge.xml", 5_000_000, declare_length=declare_length)
    async with Fetcher(timeout=5, max_bytes=1_000_000, user_agent=UA) as fetcher:
        with pytest.raises(FetchError, match=message):
            await fetcher.get(url, FeedState())


# --- redirects ------------------------------------------------------------------------------


async def test_permanent_redirect_is_recorded(server: FeedServer, fetcher: Fetcher):
    server.add("/new.xml", BODY)
    for status in (301, 308):
        url = server.add_redirect(f"/old{status}.xml", "/new.xml", status=status)
        result = await fetcher.get(url, FeedState())
        assert (result.status, result.content) == (200, BODY)
        assert result.url == result.permanent_redirect == server.url("/new.xml")


async def test_temporary_redirect_is_not_recorded(server: FeedServer, fetcher: Fetcher):
    server.add("/new.xml", BODY)
    for status in (302, 303, 307):
        url = server.add_redirect(f"/temporary{status}.xml", "/new.xml", status=status)
        result = await fetcher.get(url, FeedState())
        assert result.url == server.url("/new.xml")
        assert result.permanent_redirect is None


async def test_permanent_then_temporary_records_the_permanent_hop(
    server: FeedServer, fetcher: Fetcher
):
    server.add("/final.xml", BODY)
    server.add_redirect("/moving.xml", "/final.xml", status=302)
    url = server.add_redirect("/old.xml", "/moving.xml", status=301)
    result = await fetcher.get(url, FeedState())
    assert result.url == server.url("/final.xml")
    assert result.permanent_redirect == server.url("/moving.xml")


async def test_conditional_get_survives_a_redirect(server: FeedServer, fetcher: Fetcher):
    server.add("/new.xml", BODY)
    url = server.add_redirect("/old.xml", "/new.xml")
    first = await fetcher.get(url, FeedState())
    second = await fetcher.get(url, FeedState(etag=first.etag))
    assert second.status == 304 and second.permanent_redirect == server.url("/new.xml")


async def test_redirect_loop(server: FeedServer, fetcher: Fetcher):
    server.add_redirect("/ping.xml", "/pong.xml")
    url = server.add_redirect("/pong.xml", "/ping.xml")
    with pytest.raises(FetchError, match="redirect loop"):
        await fetcher.get(url, FeedState())
    assert len(server.requests) == 2


async def test_too_many_redirects(server: FeedServer, fetcher: Fetcher):
    for n in range(MAX_REDIRECTS + 1):
        server.add_redirect(f"/hop{n}.xml", f"/hop{n + 1}.xml")
    server.add(f"/hop{MAX_REDIRECTS + 1}.xml", BODY)
    with pytest.raises(FetchError, match=f"more than {MAX_REDIRECTS} redirects"):
        await fetcher.get(server.url("/hop0.xml"), FeedState())
    ok = await fetcher.get(server.url("/hop1.xml"), FeedState())
    assert ok.content == BODY


# --- concurrency ----------------------------------------------------------------------------


async def test_one_fetch_at_a_time_per_host(server: FeedServer, fetcher: Fetcher):
    urls = [server.add(f"/p{n}.xml", BODY, delay=0.1) for n in range(4)]
    results = await asyncio.gather(*(fetcher.get(u, FeedState()) for u in urls))
    assert [r.status for r in results] == [200] * 4
    assert server.max_in_flight == 1


async def test_global_and_per_host_limits():
    in_flight: Counter[str] = Counter()
    peaks: Counter[str] = Counter()

    async def handler(request: httpx.Request) -> httpx.Response:
        host = request.url.host
        in_flight[host] += 1
        in_flight["*"] += 1
        peaks[host] = max(peaks[host], in_flight[host])
        peaks["*"] = max(peaks["*"], in_flight["*"])
        await asyncio.sleep(0.05)
        in_flight[host] -= 1
        in_flight["*"] -= 1
        return httpx.Response(200, content=BODY)

    transport = httpx.MockTransport(handler)
    urls = [f"http://host{h}.test/feed{n}" for h in range(4) for n in range(3)]
    async with Fetcher(
        timeout=5, max_bytes=10_000, user_agent=UA, concurrency=2, transport=transport
    ) as fetcher:
        await asyncio.gather(*(fetcher.get(u, FeedState()) for u in urls))
    assert peaks["*"] == 2
    assert all(peaks[f"host{h}.test"] == 1 for h in range(4))


# --- the server itself, as other tests use it -----------------------------------------------


def test_feed_server_in_a_thread():
    with FeedServer() as feed_server:
        url = feed_server.add("/t.xml", BODY)
        first = httpx.get(url)
        again = httpx.get(url, headers={"If-None-Match": first.headers["ETag"]})
        missing = httpx.get(feed_server.url("/missing.xml"))
    assert (first.status_code, first.content) == (200, BODY)
    assert again.status_code == 304
    assert missing.status_code == 404
    assert [r.not_modified for r in feed_server.requests] == [False, True, False]

"""What 200 sequential conditional GETs cost with each HTTP layer: the floor of an unchanged poll.

The unchanged poll's goal (issue 4) is <= 0.3 x reader's ``update_feeds`` on the same feeds.
Every feed of ``bench/poll.py`` is on one host, and the per-host limit fetches them one at a
time (as reader with ``workers=1`` does), so the poll can be no faster than this loop with
nothing else in it: the server's ETag sent back, a 304, next feed. This times the loop with

- ``httpx.AsyncClient.get`` (what ``bot.fetch`` uses: proxies from the environment,
  redirects, cookies, timeouts),
- ``httpx.AsyncHTTPTransport`` directly (no client layer),
- ``httpcore.AsyncConnectionPool`` (the layer under httpx),
- ``requests.Session.get`` (what reader uses), when importable,

each in a fresh child process, on the same local server as ``bench/poll.py``. Compare the
medians with reader's whole unchanged poll as ``bench/poll.py`` prints it.

    python3 bench/http_floor.py [--feeds 200] [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

LAYERS = ("httpx client", "httpx transport", "httpcore pool", "requests")


def _headers(etag: str, modified: str) -> dict[str, str]:
    return {"If-None-Match": etag, "If-Modified-Since": modified, "User-Agent": "bench"}


async def _async_loop(layer: str, targets: list[tuple[str, str, str]]) -> tuple[float, int]:
    import httpcore
    import httpx

    if layer == "httpx client":
        async with httpx.AsyncClient() as client:
            await client.get(targets[0][0])  # connect outside the timing
            start = time.perf_counter()
            codes = [
                (await client.get(u, headers=_headers(e, m))).status_code for u, e, m in targets
            ]
    elif layer == "httpx transport":
        async with httpx.AsyncHTTPTransport() as transport:
            first = await transport.handle_async_request(httpx.Request("GET", targets[0][0]))
            await first.aread()
            start = time.perf_counter()
            codes = []
            for url, etag, modified in targets:
                request = httpx.Request("GET", url, headers=_headers(etag, modified))
                response = await transport.handle_async_request(request)
                await response.aread()
                codes.append(response.status_code)
    else:
        async with httpcore.AsyncConnectionPool() as pool:
            await pool.request("GET", targets[0][0])
            start = time.perf_counter()
            codes = []
            for url, etag, modified in targets:
                pooled = await pool.request("GET", url, headers=_headers(etag, modified))
                codes.append(pooled.status)
    return time.perf_counter() - start, sum(code == 304 for code in codes)


def _requests_loop(targets: list[tuple[str, str, str]]) -> tuple[float, int]:
    import requests

    with requests.Session() as session:
        session.get(targets[0][0])
        start = time.perf_counter()
        codes = [session.get(u, headers=_headers(e, m)).status_code for u, e, m in targets]
    return time.perf_counter() - start, sum(code == 304 for code in codes)


def child(layer: str, targets_file: str) -> None:
    targets = [(u, e, m) for u, e, m in json.loads(Path(targets_file).read_text("utf-8"))]
    if layer == "requests":
        seconds, not_modified = _requests_loop(targets)
    else:
        seconds, not_modified = asyncio.run(_async_loop(layer, targets))
    print(json.dumps({"seconds": seconds, "not_modified": not_modified}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=200)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--child", choices=LAYERS, help=argparse.SUPPRESS)
    parser.add_argument("--targets", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.targets)
        return

    import httpx
    from feedserver import FeedServer
    from poll import feed_body

    out = print  # a benchmark prints
    with FeedServer() as server, tempfile.TemporaryDirectory() as tmp:
        now = datetime.now(UTC)
        urls = [server.add(f"/f{n}.xml", feed_body(n, now)) for n in range(args.feeds)]
        targets = []
        for url in urls:
            first = httpx.get(url)
            targets.append((url, first.headers["etag"], first.headers["last-modified"]))
        targets_file = str(Path(tmp) / "targets.json")
        Path(targets_file).write_text(json.dumps(targets), "utf-8")
        out(f"{args.feeds} sequential conditional GETs (all 304), one host; medians of {args.runs}")
        for layer in LAYERS:
            times: list[float] = []
            for _ in range(args.runs):
                command = [sys.executable, __file__, "--child", layer, "--targets", targets_file]
                done = subprocess.run(
                    command,
                    capture_output=True,
                    text=True,
                    check=False,
                )
                if done.returncode != 0:
                    times = []
                    break
                result = json.loads(done.stdout)
                assert result["not_modified"] == args.feeds, result
                times.append(result["seconds"])
            if not times:
                out(f"  {layer:<16} not importable here")
                continue
            out(f"  {layer:<16} {statistics.median(times) * 1000:6.0f} ms")


if __name__ == "__main__":
    main()

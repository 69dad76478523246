"""newsbot's poll against lemon24/reader's ``update_feeds``, side by side, on the same feeds.

Serves N generated feeds (30 items each; English, Simplified and Traditional Chinese) on
127.0.0.1, then times, in one run and on the same server:

- newsbot: ``App.poll_all()`` as ``newsbot run --once`` does it (real fetcher, parser process
  pool, SQLite), after ``App.start()`` as a running service has done it (parser processes
  up), a first poll (everything new) and an unchanged poll (everything 304);
- reader: ``Reader.update_feeds()``, first and unchanged, when ``reader`` is importable.

Each side and phase runs in a fresh child process (start-up and imports are not timed), so
peak RSS is each side's own. Prints both times, the ratios, the share of conditional requests
in the unchanged polls, newsbot's peak RSS (main process and its largest parser worker), and
the event loop's lag p99 during newsbot's polls (a ticker task that measures its own lateness).

reader is a benchmark dependency only, never newsbot's. Run it from a separate venv:

    python3 -m venv /tmp/benchvenv
    /tmp/benchvenv/bin/pip install reader aiohttp -e /work/main
    /tmp/benchvenv/bin/python bench/poll.py --feeds 200 [--runs 3] [--reader-workers 1]

Without reader (e.g. the project's own venv) newsbot's side still runs and reader is skipped
with a message. The machine may be shared: times are medians over ``--runs``, ratios are
per run (both sides measured back to back).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from feedserver import FeedServer, Item, rss  # noqa: E402

ITEMS = 30
TICK = 0.005  # the lag ticker's period, seconds
TITLES = (
    "Markets close higher as investors weigh the rate outlook",
    "港股收市上升 恒指升200點 科技股造好",
    "内地消费数据好于预期 零售销售增长加快",
    "City council approves a new transport budget for the harbour area",
    "澳門旅遊業復甦 首季訪澳旅客按年增長",
    "Weather: hot and humid with isolated showers",
)
MATCHING = ("深圳推出新一批金融科技创新试点项目", "HKMA announces new stablecoin issuer licences")
BODY = (
    "<p>Lorem ipsum dolor sit amet, consectetur adipiscing elit. 市场消息指出，"
    "相關措施將於下月實施。 <a href='https://news.example/more'>More</a></p>"
)


def feed_body(n: int, now: datetime) -> bytes:
    """Feed ``n``: 30 items; one item in every tenth feed matches the default rule pack."""
    items = [
        Item(
            title=(MATCHING[n // 10 % 2] if n % 10 == 0 and i == 0 else TITLES[(n + i) % 6])
            + f" ({n}-{i})",
            link=f"https://news.example/{n}/{i}",
            guid=f"{n}-{i}",
            published=now - timedelta(minutes=10 * i),
            description=BODY * 4,
        )
        for i in range(ITEMS)
    ]
    return rss(items, title=f"Feed {n}")


# --- children: one side, one phase ---------------------------------------------------------


class LagTicker:
    """Measures how late a task that wants to wake every ``TICK`` seconds actually wakes."""

    def __init__(self) -> None:
        self.lags: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + TICK
            await asyncio.sleep(TICK)
            self.lags.append(max(0.0, loop.time() - due))

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def percentile(values: list[float], share: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def newsbot_phase(config: Path) -> dict[str, Any]:
    from bot.app import build
    from bot.config import load_settings

    settings = load_settings(config, {})
    app = await build(settings, console=io.StringIO())
    await app.start()  # as ``serve`` does before its first poll: parser processes up
    ticker = LagTicker()
    try:
        ticker.start()
        cpu = _cpu(resource.RUSAGE_SELF)
        start = time.perf_counter()
        reports = await app.poll_all()
        elapsed = time.perf_counter() - start
        cpu = _cpu(resource.RUSAGE_SELF) - cpu
        await ticker.stop()
    finally:
        await app.close()  # joins the parser processes, so RUSAGE_CHILDREN counts them
    return {
        "seconds": elapsed,
        "cpu_s": cpu,
        "worker_cpu_s": _cpu(resource.RUSAGE_CHILDREN),
        "errors": sum(r.status == "error" for r in reports),
        "new_entries": sum(r.new_entries for r in reports),
        "lag_p99_ms": 1000 * percentile(ticker.lags, 0.99),
        "lag_max_ms": 1000 * max(ticker.lags, default=0.0),
        "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "worker_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    }


def reader_phase(db: Path, urls: list[str], workers: int) -> dict[str, Any]:
    from reader import make_reader

    reader = make_reader(str(db))
    for url in urls:
        reader.add_feed(url, exist_ok=True)
    start = time.perf_counter()
    reader.update_feeds(workers=workers, scheduled=False)
    elapsed = time.perf_counter() - start
    errors = sum(1 for f in reader.get_feeds() if f.last_exception)
    reader.close()
    return {
        "seconds": elapsed,
        "errors": errors,
        "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def child(args: argparse.Namespace) -> None:
    work = Path(args.dir)
    if args.child == "newsbot":
        result = asyncio.run(newsbot_phase(work / "newsbot.toml"))
    else:
        urls = json.loads((work / "urls.json").read_text("utf-8"))
        result = reader_phase(work / "reader.sqlite", urls, args.reader_workers)
    print(json.dumps(result))


# --- parent: serve, run the children, report -----------------------------------------------


def reader_available() -> bool:
    probe = [sys.executable, "-c", "import reader"]
    return subprocess.run(probe, capture_output=True, check=False).returncode == 0


@dataclass
class Phase:
    result: dict[str, Any]
    requests: int
    conditional: float
    not_modified: float


def run_child(server: FeedServer, work: Path, side: str, reader_workers: int) -> Phase:
    before = len(server.requests)
    command = [sys.executable, __file__, "--child", side, "--dir", str(work)]
    command += ["--reader-workers", str(reader_workers)]
    path = os.pathsep.join(filter(None, [os.environ.get("PYTHONPATH"), str(ROOT)]))
    env = {**os.environ, "PYTHONPATH": path, "NEWSBOT_LOG_LEVEL": "ERROR"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{side} child failed:\n{done.stderr[-3000:]}")
    seen = server.requests[before:]
    total = max(1, len(seen))
    return Phase(
        json.loads(done.stdout.strip().splitlines()[-1]),
        len(seen),
        sum(r.conditional for r in seen) / total,
        sum(r.not_modified for r in seen) / total,
    )


def setup(work: Path, server: FeedServer, n_feeds: int) -> None:
    rules = work / "rules"
    rules.mkdir()
    pack = (ROOT / "rules" / "gba-fintech.yaml").read_text("utf-8")
    (rules / "gba-fintech.yaml").write_text(pack, "utf-8")
    now = datetime.now(UTC)
    urls = [server.add(f"/f{n}.xml", feed_body(n, now)) for n in range(n_feeds)]
    lines = ["feeds:"] + [f"  - url: {url}\n    name: Feed {n}" for n, url in enumerate(urls)]
    (rules / "feeds.yaml").write_text("\n".join(lines) + "\n", "utf-8")
    (work / "urls.json").write_text(json.dumps(urls), "utf-8")
    (work / "newsbot.toml").write_text(
        f'[storage]\nurl = "sqlite:///{work}/newsbot.sqlite"\n[rules]\ndir = "{rules}"\n',
        "utf-8",
    )


def one_run(n_feeds: int, with_reader: bool, reader_workers: int) -> dict[str, Phase]:
    phases: dict[str, Phase] = {}
    with FeedServer() as server, tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        setup(work, server, n_feeds)
        phases["newsbot first"] = run_child(server, work, "newsbot", reader_workers)
        phases["newsbot unchanged"] = run_child(server, work, "newsbot", reader_workers)
        if with_reader:
            phases["reader first"] = run_child(server, work, "reader", reader_workers)
            phases["reader unchanged"] = run_child(server, work, "reader", reader_workers)
    return phases


def report(runs: list[dict[str, Phase]], n_feeds: int, reader_workers: int) -> None:
    def med(name: str, key: str) -> float:
        return statistics.median(run[name].result[key] for run in runs)

    out = print  # a benchmark prints
    out(f"{n_feeds} local feeds x {ITEMS} items, {len(runs)} run(s); times are medians")
    for name in runs[0]:
        phase = runs[-1][name]
        line = f"  {name:<18} {med(name, 'seconds'):7.2f} s  errors {phase.result['errors']}"
        line += f"  requests {phase.requests}, conditional {phase.conditional:.0%}"
        out(line + f", 304 {phase.not_modified:.0%}")
    for phase in ("first", "unchanged"):
        lag = med(f"newsbot {phase}", "lag_p99_ms")
        top = med(f"newsbot {phase}", "lag_max_ms")
        out(f"  newsbot {phase}: event loop lag p99 {lag:.1f} ms (max {top:.1f} ms)")
    for phase in ("first", "unchanged"):
        main = med(f"newsbot {phase}", "cpu_s")
        workers = med(f"newsbot {phase}", "worker_cpu_s")
        out(f"  newsbot {phase}: CPU main process {main:.2f} s, parser workers {workers:.2f} s")
    main_rss = max(run[n].result["rss_mb"] for run in runs for n in run if "newsbot" in n)
    worker = max(run[n].result["worker_rss_mb"] for run in runs for n in run if "newsbot" in n)
    out(f"  newsbot peak RSS: main {main_rss:.0f} MB, largest parser worker {worker:.0f} MB")
    if "reader first" not in runs[0]:
        return
    out(f"  reader update_feeds(workers={reader_workers}); ratios newsbot / reader, per run:")
    for i, run in enumerate(runs, 1):
        first = run["newsbot first"].result["seconds"] / run["reader first"].result["seconds"]
        same = (
            run["newsbot unchanged"].result["seconds"] / run["reader unchanged"].result["seconds"]
        )
        out(f"    run {i}: first {first:.2f} (goal <= 0.5), unchanged {same:.2f} (goal <= 0.3)")
    reader_rss = max(run[n].result["rss_mb"] for run in runs for n in run if "reader" in n)
    out(f"  reader peak RSS: {reader_rss:.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=200)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--reader-workers", type=int, default=1, help="reader's default is 1")
    parser.add_argument("--no-reader", action="store_true", help="time newsbot only")
    parser.add_argument("--child", choices=("newsbot", "reader"), help=argparse.SUPPRESS)
    parser.add_argument("--dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    with_reader = not args.no_reader and reader_available()
    if not with_reader and not args.no_reader:
        print(
            "reader is not importable in this interpreter: timing newsbot only. Install it in a "
            "separate venv (see this file's docstring), never in newsbot's own."
        )
    runs = [one_run(args.feeds, with_reader, args.reader_workers) for _ in range(args.runs)]
    report(runs, args.feeds, args.reader_workers)


if __name__ == "__main__":
    main()

"""The command line; thin: parse arguments, load settings, call the app.

The app, the store and the replay are imported where a command needs them, not at the top:
the parser worker processes start by importing the main module (``newsbot`` imports this
one), and each would otherwise load the whole bot (0.5 s of CPU and ~40 MB) to run feedparser.

Exit codes: 0 success; 1 invalid rules (``rules check``, or rules that stop start-up);
2 a configuration or usage error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from bot import __version__
from bot.config import Settings, config_path, load_settings
from bot.errors import ConfigError, NewsbotError, RuleError
from bot.explain import explain, format_explanation
from bot.logs import setup_logging
from bot.model import Entry
from bot.outbox_view import outbox_text
from bot.rulebook import Rulebook
from bot.rulefiles import check_rules
from bot.ruleschema import rules_json_schema
from bot.units import parse_duration
from bot.views import feeds_table

if TYPE_CHECKING:
    from bot.store import Store

log = logging.getLogger("bot")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="newsbot", description="Watch news feeds and push matching stories to Telegram."
    )
    parser.add_argument("--version", action="version", version=f"newsbot {__version__}")
    parser.add_argument("--config", metavar="FILE", help="TOML config (default: newsbot.toml)")
    parser.add_argument(
        "--log-level", metavar="LEVEL", help="DEBUG, INFO, WARNING or ERROR (env NEWSBOT_LOG_LEVEL)"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = sub.add_parser("run", help="poll feeds, answer chat commands, send alerts")
    run.add_argument("--once", action="store_true", help="poll every feed once, send, exit")
    run.add_argument(
        "--deadline",
        default="5m",
        metavar="DURATION",
        help="with --once: stop retrying sends after this long (default 5m)",
    )
    rules = sub.add_parser("rules", help="check or try the rule files")
    rules_sub = rules.add_subparsers(dest="rules_command", required=True, metavar="ACTION")
    rules_sub.add_parser("check", help="validate rules/: FILE:LINE: message per problem")
    test = rules_sub.add_parser(
        "test", help="why a text matches, or replay the rules over stored entries (--since)"
    )
    test.add_argument("text", nargs="?", help="a headline or any text")
    test.add_argument("--since", metavar="DURATION", help="replay over entries seen since, e.g. 7d")
    test.add_argument("--topic", metavar="ID", help="with TEXT: explain this topic only")
    test.add_argument("--feed", metavar="NAME", help="with TEXT: as if carried by this feed")
    test.add_argument("--limit", type=int, default=50, help="with --since: stories per list")
    rules_sub.add_parser("schema", help="print a JSON Schema of the rule files for editors")
    feeds = sub.add_parser("feeds", help="each feed's health")
    feeds.add_argument(
        "--enable",
        metavar="FEED",
        help="fetch a disabled (410 Gone) feed again, from scratch: its name or url; a "
        "running service picks it up within a minute",
    )
    sub.add_parser("outbox", help="the delivery queue: pending, dead rows with reasons, per chat")
    return parser


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    args = _parser().parse_args(argv)
    env = os.environ if env is None else env
    level = (args.log_level or env.get("NEWSBOT_LOG_LEVEL") or "INFO").upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        print(f"newsbot: unknown log level {level!r}", file=sys.stderr)  # noqa: T201
        return 2
    try:
        settings = load_settings(config_path(args.config, env), env)
    except ConfigError as e:
        setup_logging(level)
        log.error("configuration error: %s", e)
        return 2
    setup_logging(level, secrets=[settings.telegram.token])
    try:
        if args.command == "run":
            deadline = timedelta(seconds=parse_duration(args.deadline))
            return asyncio.run(_run(settings, once=args.once, deadline=deadline))
        if args.command == "rules":
            return _rules(settings, args)
        if args.command == "outbox":
            return asyncio.run(_outbox(settings))
        return asyncio.run(_feeds(settings, enable=args.enable))
    except RuleError as e:
        log.error("invalid rules, not starting:\n%s", e)
        return 1
    except (ConfigError, ValueError) as e:
        log.error("configuration error: %s", e)
        return 2
    except NewsbotError as e:
        log.error("%s", e)
        return 2


async def _run(settings: Settings, *, once: bool, deadline: timedelta) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    from bot.app import build

    app = await build(settings)
    try:
        if once:
            await app.run_once(deadline, stop)
        else:
            await app.serve(stop)
    finally:
        await app.close()
    return 0


def _rules(settings: Settings, args: argparse.Namespace) -> int:
    if args.rules_command == "schema":
        print(json.dumps(rules_json_schema(), indent=2, ensure_ascii=False))  # noqa: T201
        return 0
    rulebook, problems = check_rules(settings.rules_dir)
    for problem in problems:
        print(f"{problem}{' (warning)' if problem.warning else ''}")  # noqa: T201
    if rulebook is None:
        return 1
    if args.rules_command == "check":
        counts = f"{len(rulebook.topics)} topics, {len(rulebook.feeds)} feeds"
        print(f"ok: {counts} in {settings.rules_dir}")  # noqa: T201
        return 0
    if args.since:
        if args.text:
            raise ValueError("rules test: give a TEXT or --since, not both")
        since = timedelta(seconds=parse_duration(args.since))
        return asyncio.run(_rules_replay(settings, rulebook, since, args.limit))
    if not args.text:
        raise ValueError("rules test: give a TEXT, or --since DURATION")
    return _rules_test(rulebook, args.text, topic=args.topic, feed_name=args.feed)


def _rules_test(rulebook: Rulebook, text: str, *, topic: str | None, feed_name: str | None) -> int:
    """Which topics match ``text`` as a headline and why; without --feed, scopes are ignored."""
    feed = None
    if feed_name is not None:
        feed = next((f for f in rulebook.feeds if feed_name in (f.name, f.url)), None)
        if feed is None:
            raise ValueError(f"rules test: no feed named {feed_name!r} in feeds.yaml")
    explanation = explain(rulebook, Entry(id=None, link="", title=text), feed)
    print(format_explanation(explanation, topic=topic))  # noqa: T201
    return 0


async def _rules_replay(
    settings: Settings, rulebook: Rulebook, since: timedelta, limit: int
) -> int:
    from bot.replay import ProgressLine, format_replay, replay

    store = await _open_store(settings)
    progress = ProgressLine(sys.stderr)
    try:
        report = await replay(store, rulebook, since, datetime.now(UTC), progress)
    finally:
        progress.close()
        await store.close()
    print(format_replay(report, limit=limit))  # noqa: T201
    return 0


async def _feeds(settings: Settings, *, enable: str | None = None) -> int:
    store = await _open_store(settings)
    try:
        health = await store.feeds.health()
        if enable is None:
            print(feeds_table(health, now=datetime.now(UTC)))  # noqa: T201
            return 0
        feed = next((f for f in health if enable in (f.name, f.url)), None)
        if feed is None:
            raise ValueError(f"feeds --enable: no feed named {enable!r} in feeds.yaml")
        if not feed.disabled:
            log.info("feed %s is not disabled: nothing to do", feed.name)
            return 0
        await store.feeds.enable(feed.url)
        log.info("feed %s enabled again (it was %s)", feed.name, feed.disabled)
        return 0
    finally:
        await store.close()


async def _outbox(settings: Settings) -> int:
    store = await _open_store(settings)
    try:
        print(outbox_text(await store.outbox.report(datetime.now(UTC))))  # noqa: T201
    finally:
        await store.close()
    return 0


async def _open_store(settings: Settings) -> Store:
    from bot.store import Store

    return await Store.open(settings.storage_url, story_window=settings.story_window)
